"""SASL EXTERNAL bind with a TLS client certificate (RFC 4422 Appendix A, RFC 4513 §5.2.3).

- Offered when `sasl.external` is on (the default); off, EXTERNAL is an
  unknown mechanism: authMethodNotSupported (bind.py).
- The credentials are the certificate the TLS session holds, one a trusted
  CA issued (`directory.client_certificate`). Without one (no TLS, no
  certificate, or another CA's): inappropriateAuthentication (48; RFC 4511
  Appendix A: the client supplied no credentials).
- The certificate must be within its validity period now and, when it
  names extended key usages, allow clientAuth or emailProtection (RFC 5280
  §4.2.1.12: a server's certificate does not authenticate a person); else
  invalidCredentials (49).
- It maps to an entry by the rules of `sasl.map`, in order:
  - issued: the built-in CA's record of the certificate
    (`DSA.certificate_identity`), read at every bind so a revocation or a
    hold counts at once: such a certificate gets invalidCredentials (49)
    and no other rule is tried;
  - mail: the one entry whose mail is the certificate's rfc822Name
    (none, or several: no mapping);
  - subject: the first `sasl.subject` rule whose pattern matches the subject
    (RFC 4514 string) names the entry; without rules, the subject DN itself.
  The first rule that names a DN decides, and that entry must exist (a
  certificate the CA issued for an entry since deleted does not fall
  through to another entry with its mail address); no rule naming one:
  invalidCredentials (49). The root DN never binds by certificate: its
  credential is the configured password.
- An authzId in the credentials (RFC 4422 §3.4.1, RFC 4513 §5.2.1.8: "dn:"
  form) other than the mapped identity must be one the access policy lets
  that identity act as (`may_proxy`, the rule of proxied authorization);
  else, or in another form, insufficientAccessRights (50), as slapd answers
  SASL's authorization failure. The session is then bound as the
  authorization identity, mechanism "EXTERNAL".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from directory.acl.identity import Identity
from directory.acl.view import View
from directory.dsa import DSA
from directory.operation import Operation, Outcome, Reply
from directory.predicates import compile_filter
from directory.protocol.dn import DN
from directory.protocol.filter import Equality
from directory.protocol.messages import SUCCESS, BindRequest, BindResponse, Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.resolved_filter import resolve_filter
from directory.search_plan import plan

MECHANISM = "EXTERNAL"
LOGIN_USAGES = frozenset({ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION,
                          ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE})


def _refused(why: str) -> LDAPError:
    return LDAPError(ResultCode.INVALID_CREDENTIALS, why)


def _check_usable(dsa: DSA, certificate: x509.Certificate) -> None:
    now = dsa.now()
    if now < certificate.not_valid_before_utc:
        raise _refused("the client certificate is not valid yet")
    if now > certificate.not_valid_after_utc:
        raise _refused("the client certificate has expired")
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not LOGIN_USAGES & set(usages):
        raise _refused("the client certificate is not for client authentication or e-mail")


def _by_record(dsa: DSA, der: bytes, certificate: x509.Certificate) -> DN | None:
    return None if dsa.certificate_identity is None else dsa.certificate_identity(der)


def _by_mail(dsa: DSA, der: bytes, certificate: x509.Certificate) -> DN | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    found: set[DN] = set()
    for address in names.value.get_values_for_type(x509.RFC822Name):
        wanted = resolve_filter(dsa.schema, Equality("mail", address.encode()))
        matches = compile_filter(dsa.schema, wanted)
        query = plan(dsa.backend.indexed, wanted)
        found |= {e.dn for e in dsa.backend.search(dsa.suffix, Scope.SUB, query) if matches(e)}
    return found.pop() if len(found) == 1 else None


def _by_subject(dsa: DSA, der: bytes, certificate: x509.Certificate) -> DN | None:
    subject = certificate.subject.rfc4514_string()
    rules = dsa.config.sasl.subject_rules
    if not rules:
        return _parsed(dsa, subject)
    for rule in rules:
        matched = rule.match.search(subject)
        if matched is not None:
            return _parsed(dsa, matched.expand(rule.dn))
    return None


def _parsed(dsa: DSA, text: str) -> DN | None:
    try:
        return dsa.parse_dn(text)
    except LDAPError:
        return None


CertificateMap = Callable[[DSA, bytes, x509.Certificate], DN | None]

MAPS: Mapping[str, CertificateMap] = {
    "issued": _by_record,
    "mail": _by_mail,
    "subject": _by_subject,
}


def identity(dsa: DSA, der: bytes) -> DN:
    """The entry the client certificate `der` authenticates, by the `sasl.map` rules."""
    certificate = x509.load_der_x509_certificate(der)
    _check_usable(dsa, certificate)
    subject = certificate.subject.rfc4514_string()
    for name in dsa.config.sasl.maps:
        dn = MAPS[name](dsa, der, certificate)
        if dn is None:
            continue
        if dn == dsa.root_dn or dsa.backend.get(dn) is None:
            raise _refused(f"the client certificate {subject} names no entry here ({dn})")
        return dn
    raise _refused(f"no entry for the client certificate {subject}")


def _authorized(op: Operation, authenticated: DN, credentials: bytes) -> DN:
    if not credentials:
        return authenticated
    text = credentials.decode("utf-8", "replace")
    if not text.startswith("dn:"):
        raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                        f"authzId {text!r}: only the dn: form is supported")
    try:
        wanted = op.dsa.parse_dn(text.removeprefix("dn:"))
    except LDAPError:
        raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                        f"authzId {text!r} is not a DN") from None
    if wanted == authenticated:
        return wanted
    who = Identity(authenticated, False, MECHANISM, op.session.tls_subject, op.session.peer)
    if wanted == op.dsa.root_dn or not View(op.dsa.acl, who, op.dsa.backend.get).may_proxy(
            wanted):
        raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                        f"{authenticated} may not act as {wanted}")
    return wanted


def bind(op: Operation, request: BindRequest) -> Outcome:
    session = op.session
    op.detail = f'dn="{request.name}" mech={MECHANISM}'
    if session.tls_client_cert is None:
        raise LDAPError(ResultCode.INAPPROPRIATE_AUTHENTICATION,
                        "SASL EXTERNAL needs a TLS client certificate from a trusted CA")
    authenticated = identity(op.dsa, session.tls_client_cert)
    dn = _authorized(op, authenticated, request.credentials or b"")
    op.detail += f' authcid="{authenticated}" authzid="dn:{dn}"'
    session.bound = dn
    session.mechanism = MECHANISM
    return [Reply(BindResponse(SUCCESS))]
