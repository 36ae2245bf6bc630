"""Cancel (RFC 3909): end an outstanding operation of the same connection.

- The request value is `SEQUENCE { cancelID MessageID }`; a missing or
  malformed one is protocolError (2).
- An operation this connection has not got outstanding (finished, never
  sent, or another connection's) is noSuchOperation (119). Abandon and
  Unbind are never outstanding (they are done as they arrive), so a Cancel
  naming one finds no operation, as slapd answers.
- Bind, StartTLS and Cancel itself cannot be cancelled: cannotCancel (121);
  nor can an operation of another identity (the proxied authorization
  control, RFC 3909 §4: no user cancels another's). A Cancel cannot be
  abandoned (RFC 3909 §3, `abandonable`).
- A search or a compare is cancelled between two of its replies (a
  persist search waiting for commits at once): it ends
  with canceled (118), and then the Cancel answers success, so its
  response comes after the cancelled operation's (RFC 3909 §2). An update
  may already be in the writer's transaction, and an operation abandoned
  is already ending: tooLate (120). An operation another Cancel is
  cancelling is operationsError (1), as slapd.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet.defer import Deferred

from directory.acl.identity import identity_of
from directory.operation import Operation, Outcome, Replies, Reply
from directory.protocol import ber
from directory.protocol.ber import decode_int
from directory.protocol.messages import (
    START_TLS,
    SUCCESS,
    BindRequest,
    CompareRequest,
    ExtendedRequest,
    ExtendedResponse,
    Request,
    SearchRequest,
)
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

CANCEL = "1.3.6.1.1.8"

UNCANCELABLE_EXTENDED = frozenset({START_TLS, CANCEL})

# What a Cancel answers for an outstanding request of each kind; None: it
# is cancelled. Kinds not listed are updates, tooLate.
ANSWERS: Mapping[type, ResultCode | None] = {
    SearchRequest: None,
    CompareRequest: None,
    BindRequest: ResultCode.CANNOT_CANCEL,
}


WHY: Mapping[ResultCode, str] = {
    ResultCode.CANNOT_CANCEL: "cannot be cancelled",
    ResultCode.TOO_LATE: "is too far along to be cancelled",
}


def _cancel_id(value: bytes | None) -> int:
    if value is None:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "cancel needs the message ID to cancel")
    try:
        start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "cancelRequestValue")
        s, e = ber.expect(value, start, end, ber.INTEGER, "cancelID")
        if e != end or end != len(value):
            raise ProtocolError("data after the cancelID")
        return decode_int(value, s, e)
    except ProtocolError as error:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"bad cancel request: {error}") from None


def _answer(request: Request) -> ResultCode | None:
    if isinstance(request, ExtendedRequest) and request.name in UNCANCELABLE_EXTENDED:
        return ResultCode.CANNOT_CANCEL
    return ANSWERS.get(type(request), ResultCode.TOO_LATE)


def abandonable(request: Request) -> bool:
    return not (isinstance(request, ExtendedRequest) and request.name == CANCEL)


def cancel(op: Operation, value: bytes | None) -> Outcome:
    cancel_id = _cancel_id(value)
    op.detail = f"msg={cancel_id}"
    target = op.session.outstanding.get(cancel_id)
    if target is None:
        raise LDAPError(ResultCode.NO_SUCH_OPERATION, f"no operation {cancel_id} outstanding")
    answer = _answer(target.request)
    if identity_of(target).dn != identity_of(op).dn:
        answer = ResultCode.CANNOT_CANCEL
    elif answer is None and target.abandoned:
        answer = ResultCode.TOO_LATE
    if answer is not None:
        raise LDAPError(answer, f"operation {cancel_id} {WHY[answer]}")
    if target.canceled is not None:
        raise LDAPError(ResultCode.OPERATIONS_ERROR, f"operation {cancel_id} is being cancelled")
    ended: Deferred[None] = Deferred()
    target.canceled = ended
    if target.interrupt is not None:
        target.interrupt()

    def answered(_: None) -> Replies:
        return [Reply(ExtendedResponse(SUCCESS))]

    return ended.addCallback(answered)
