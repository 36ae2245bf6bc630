"""Extended operations (RFC 4511 §4.12), one table.

- WhoAmI (RFC 4532): "dn:<DN>" of the authorization identity (the bound
  DN, or the one the proxied authorization control names, RFC 4532 §2.1),
  or empty for anonymous.
- Password Modify (RFC 3062): the identity defaults to the bound entry;
  anonymous clients may not use it (strongAuthRequired, as slapd); it needs
  write on the target's userPassword (`privileges`; by default only the
  entry itself and the root DN have it), an entry not disclosed to the
  requester is noSuchObject; a given old password must verify
  (unwillingToPerform otherwise, slapd's "unwilling to verify old
  password", and when the value it verified against changed before the
  write); without a new password one is generated and returned in
  genPasswd. The new value is always hashed, even when it looks like a
  hash. Verification and hashing run on the password queue, before the
  writer job (`directory.ops.userpassword`).
- StartTLS (RFC 4511 §4.14, RFC 4513 §3): refused with operationsError while
  TLS is active or other operations are outstanding, protocolError when the
  server has no certificate; TLS starts right after the response is sent.
- Cancel (RFC 3909): `directory.ops.cancel`.
- The application may add operations to `DSA.extensions` (the CA adds its
  certificate request); the root DSE lists them with these.
- An unknown requestName gets protocolError (RFC 4511 §4.12).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from directory import passwords
from directory.acl.identity import identity_of
from directory.acl.rights import WRITE
from directory.backend import Transaction
from directory.deferreds import from_coroutine
from directory.operation import Operation, Outcome, Reply
from directory.operational import stamp_modified
from directory.ops import cancel, privileges, userpassword
from directory.ops.visibility import view_of
from directory.protocol import ber
from directory.protocol.ber import children
from directory.protocol.messages import START_TLS, SUCCESS, ExtendedRequest, ExtendedResponse
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

WHOAMI = "1.3.6.1.4.1.4203.1.11.3"
PASSWORD_MODIFY = "1.3.6.1.4.1.4203.1.11.1"


def whoami(op: Operation, value: bytes | None) -> Outcome:
    who = identity_of(op)
    identity = b"" if who.anonymous else b"dn:" + str(who.dn).encode()
    return [Reply(ExtendedResponse(SUCCESS, None, identity))]


def _password_fields(value: bytes | None) -> dict[int, bytes]:
    if value is None:
        return {}
    try:
        start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "PasswdModifyRequestValue")
        return {tag: value[s:e] for tag, s, e in children(value, start, end)}
    except ProtocolError as e:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"bad password modify request: {e}") from None


def password_modify(op: Operation, value: bytes | None) -> Outcome:
    fields = _password_fields(value)
    session = op.session
    if session.anonymous:
        raise LDAPError(ResultCode.STRONGER_AUTH_REQUIRED,
                        "only authenticated users may change passwords")
    identity = fields.get(0x80)
    if identity is not None:
        text = identity.decode(errors="replace")
        target = op.dsa.parse_dn(text.removeprefix("dn:"))
    else:
        target = session.bound
    if target == op.dsa.root_dn or not target:
        raise LDAPError(ResultCode.UNWILLING_TO_PERFORM,
                        "the root DN's password is set in the configuration")
    entry = privileges.disclosed(view_of(op), target)
    privileges.require(view_of(op), entry, WRITE, userpassword.USER_PASSWORD)
    old = fields.get(0x81)
    new = fields.get(0x82)
    generated = None
    if new is None:
        generated = passwords.generate_password()
        new = generated.encode()
    actor = session.bound
    op.detail = f'dn="{target}"'
    hashing = op.dsa.hashing
    response_value = None if generated is None else ber.sequence(
        [ber.tlv(0x80, generated.encode())])

    async def change() -> list[Reply]:
        match = None
        if old is not None:
            match = await userpassword.check(op, target, entry.get(userpassword.USER_PASSWORD),
                                             old)
            if match is None:
                raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unwilling to verify old password")
        value = await userpassword.submit(op, target, hashing.hash, new)

        def job(txn: Transaction) -> None:
            view = view_of(op).reading(txn.get)
            current = privileges.disclosed(view, target)
            privileges.require(view, current, WRITE, userpassword.USER_PASSWORD)
            if match is not None and match not in current.get(userpassword.USER_PASSWORD):
                raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unwilling to verify old password")
            attributes = dict(current.attributes)
            attributes[userpassword.USER_PASSWORD] = (value,)
            stamp_modified(op.dsa, attributes, actor)
            txn.replace(current.with_attributes(attributes))

        await op.dsa.write(job)
        return [Reply(ExtendedResponse(SUCCESS, None, response_value))]

    return from_coroutine(change())


def start_tls(op: Operation, value: bytes | None) -> Outcome:
    session = op.session
    if session.tls:
        raise LDAPError(ResultCode.OPERATIONS_ERROR, "TLS is already active")
    if len(session.outstanding) > 1:
        raise LDAPError(ResultCode.OPERATIONS_ERROR, "operations are outstanding")
    if session.start_tls is None:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "StartTLS is not available: no certificate")
    op.after = session.start_tls
    return [Reply(ExtendedResponse(SUCCESS, START_TLS))]


ExtendedHandler = Callable[[Operation, bytes | None], Outcome]

EXTENDED: Mapping[str, ExtendedHandler] = {
    WHOAMI: whoami,
    PASSWORD_MODIFY: password_modify,
    START_TLS: start_tls,
    cancel.CANCEL: cancel.cancel,
}


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, ExtendedRequest)
    handler = EXTENDED.get(request.name) or op.dsa.extensions.get(request.name)
    op.detail = f"oid={request.name}"
    if handler is None:
        raise LDAPError(ResultCode.PROTOCOL_ERROR,
                        f"unsupported extended operation {request.name}")
    return handler(op, request.value)
