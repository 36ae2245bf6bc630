"""Bind (RFC 4511 §4.2, RFC 4513 §5).

- Only LDAPv3: any other version gets protocolError in the BindResponse
  (RFC 4511 §4.2.1) and the connection stays open.
- A bind first drops the session's identity, and the paged-results
  cursors that belong to it; on failure it stays anonymous (RFC 4513 §5.1).
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
- The password is verified on the password queue, never on the reactor
  thread (`directory.ops.userpassword.check`): an entry that does not
  exist, has no usable userPassword, or whose userPassword the anonymous
  identity may not `auth` against (the access policy) costs one
  verification of a dummy hash and fails as a wrong password does.
- On success the session is "simple"-authenticated; a value stored in
  an older scheme is upgraded to Argon2id (`userpassword.upgrade`).
"""

from __future__ import annotations

from directory.acl.identity import ANONYMOUS
from directory.acl.rights import Rights
from directory.acl.view import View
from directory.deferreds import from_coroutine
from directory.entry import Entry
from directory.operation import Operation, Outcome, Reply
from directory.ops import sasl_external, userpassword
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
    dn = op.target
    entry = None
    if dn == op.dsa.root_dn:
        stored: tuple[bytes, ...] = (op.dsa.config.root_password_hash.encode(),)
    else:
        entry = op.dsa.backend.get(dn)
        stored = _authenticating(op, entry)

    async def bind() -> list[Reply]:
        match = await userpassword.check(op, dn, stored, password)
        if match is None:
            raise LDAPError(ResultCode.INVALID_CREDENTIALS, INVALID)
        session.bound = dn
        session.is_root = dn == op.dsa.root_dn
        session.mechanism = "simple"
        if entry is not None:
            await userpassword.upgrade(op, dn, match, password)
        return [Reply(BindResponse(SUCCESS))]

    return from_coroutine(bind())


def _authenticating(op: Operation, entry: Entry | None) -> tuple[bytes, ...]:
    """The userPassword values a bind may verify against."""
    if entry is None:
        return ()
    view = View(op.dsa.acl, ANONYMOUS, op.dsa.backend.get)
    if not view.allows(entry, Rights.AUTH, userpassword.USER_PASSWORD):
        return ()
    return entry.get(userpassword.USER_PASSWORD)
