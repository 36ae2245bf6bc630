"""Bind (RFC 4511 §4.2, RFC 4513 §5).

- Only LDAPv3: any other version gets protocolError in the BindResponse
  (RFC 4511 §4.2.1) and the connection stays open.
- A bind first drops the session's identity; on failure it stays
  anonymous (RFC 4513 §5.1).
- Empty name and empty password: anonymous (RFC 4513 §5.1.1).
- A name with an empty password is an unauthenticated bind, refused with
  unwillingToPerform (RFC 4513 §5.1.2, §6.3.1).
- Simple bind over a connection without TLS is refused with
  confidentialityRequired when the configuration says so (RFC 4513 §5.1.3).
- The root DN binds with the password whose hash is in the configuration;
  any other DN with one of its userPassword values.
- A wrong password and a DN that does not exist both get invalidCredentials
  with the same message, so a client cannot probe which DNs exist.
- SASL EXTERNAL is `directory.ops.sasl_external`; other SASL mechanisms,
  and authentication choices other than simple and SASL (the choice is
  extensible), are not offered: authMethodNotSupported.
- Argon2 verification runs off the reactor thread.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread

from directory import passwords
from directory.operation import Operation, Outcome, Reply
from directory.ops import sasl_external
from directory.protocol.dn import DN
from directory.protocol.messages import SUCCESS, BindRequest, BindResponse
from directory.protocol.results import LDAPError, ResultCode

INVALID = "invalid credentials"


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, BindRequest)
    session = op.session
    session.bound = DN.ROOT
    session.is_root = False
    session.mechanism = ""
    session.paged.clear()
    if request.version != 3:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"LDAP version {request.version} unsupported")
    if request.other_method is not None:
        raise LDAPError(ResultCode.AUTH_METHOD_NOT_SUPPORTED,
                        f"authentication choice [{request.other_method & 0x1F}] not supported")
    if request.mechanism == sasl_external.MECHANISM and op.dsa.config.sasl.external:
        return sasl_external.bind(op, request)
    if request.mechanism is not None:
        raise LDAPError(ResultCode.AUTH_METHOD_NOT_SUPPORTED,
                        f"SASL mechanism {request.mechanism} not supported")
    password = request.password or b""
    if not request.name:
        if password:
            raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "password given without a name")
        op.detail = 'dn="" method=128 anonymous'
        return [Reply(BindResponse(SUCCESS))]
    op.detail = f'dn="{request.name}" method=128'
    if not password:
        raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unauthenticated bind (DN with no "
                        "password) is not allowed")
    if op.dsa.config.confidentiality_required and not session.tls:
        raise LDAPError(ResultCode.CONFIDENTIALITY_REQUIRED,
                        "simple bind requires TLS (use StartTLS or ldaps://)")
    dn = op.dsa.parse_dn(request.name)
    if dn == op.dsa.root_dn:
        stored: tuple[bytes, ...] = (op.dsa.config.root_password_hash.encode(),)
    else:
        entry = op.dsa.backend.get(dn)
        stored = () if entry is None else entry.get("userpassword")
    checked = _check(stored, password)

    def bound(ok: bool) -> list[Reply]:
        if not ok:
            raise LDAPError(ResultCode.INVALID_CREDENTIALS, INVALID)
        session.bound = dn
        session.is_root = dn == op.dsa.root_dn
        return [Reply(BindResponse(SUCCESS))]

    return checked.addCallback(bound)


def _check(stored: tuple[bytes, ...], password: bytes) -> Deferred[bool]:
    fast = [s for s in stored if not passwords.is_slow(s)]
    if any(passwords.verify(s, password) for s in fast):
        return succeed(True)
    slow = [s for s in stored if passwords.is_slow(s)]
    if not slow:
        return succeed(False)
    result: Deferred[bool] = deferToThread(
        lambda: any(passwords.verify(s, password) for s in slow))
    return result
