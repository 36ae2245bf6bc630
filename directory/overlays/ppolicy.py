"""Password policy (a subset of draft-behera-ldap-password-policy-10; slapo-ppolicy).

Bind, for an entry under a policy (`directory.ppolicy.config`):

- A locked account (`state.is_locked`) gets invalidCredentials (49)
  without its password being verified, error accountLocked.
- A wrong password is recorded (pwdFailureTime, then pwdAccountLockedTime
  at `lockout_failures`); the next bind to the entry waits until that is
  committed (`directory.ppolicy.turns`).
- A right one clears the failures. Within `expire_warning` of expiry
  (pwdChangedTime + `max_age`) the response warns timeBeforeExpiration
  (seconds); once expired each bind uses a grace login (pwdGraceUseTime,
  warning graceAuthNsRemaining) and when none is left the bind fails with
  invalidCredentials, error passwordExpired.
- The response control goes on every bind response (success or failure)
  when the client sent the request control, and only then (as slapd, with
  `ppolicy_use_lockout` for accountLocked).

Bind as the root DN, which is no entry: a per-source backoff
(`directory.ppolicy.backoff`); a refused bind gets invalidCredentials (49)
without its password being verified, the same answer as a wrong password,
with the wait in the diagnostic message.

The state attributes (pwdHistory holds old password hashes) are hidden from
everyone but the root DN, as userPassword is.

Password changes (add with userPassword, modify of userPassword, Password
Modify with a new password) of an entry under a policy:

- By anyone but the root DN (slapd exempts the password administrator):
  the clear text must have `min_length` characters (passwordTooShort) and
  `min_classes` character classes (insufficientPasswordQuality), and must
  not verify against the current password or the last `history` ones
  (passwordInHistory): constraintViolation (19) with the error control.
  The checks read the request's values before the operation hashes them.
- After the change (by anyone): pwdChangedTime is set (in the add's own
  transaction; for modify and Password Modify in a writer job right after
  the change's), the old stored value goes into pwdHistory, failures,
  lock and grace uses are cleared.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.python.failure import Failure

from directory.entry import resolve
from directory.operation import Handler, Operation, Outcome, Replies, Reply
from directory.ops.extended import PASSWORD_MODIFY
from directory.ppolicy import history, quality, state
from directory.ppolicy.config import Policy
from directory.ppolicy.turns import Turn
from directory.protocol import ber
from directory.protocol.dn import DN
from directory.protocol.messages import (
    AddRequest,
    BindRequest,
    Control,
    ExtendedRequest,
    ModifyRequest,
    ModOp,
)
from directory.protocol.ppolicy_control import PASSWORD_POLICY, PolicyError, PolicyResponse
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

log = logging.getLogger("certdir.ppolicy")
INVALID = "invalid credentials"
PROBLEMS: Mapping[PolicyError, Callable[[Policy], str]] = {
    PolicyError.PASSWORD_TOO_SHORT:
        lambda p: f"password is shorter than {p.min_length} characters",
    PolicyError.INSUFFICIENT_PASSWORD_QUALITY:
        lambda p: f"password uses fewer than {p.min_classes} of the character classes "
                  "lower case, upper case, digits, other",
    PolicyError.PASSWORD_IN_HISTORY: lambda p: "password was used before",
}


def _controls(op: Operation, response: PolicyResponse) -> tuple[Control, ...]:
    return (response.to_control(),) if PASSWORD_POLICY in op.controls else ()


def _with_control(op: Operation, error: LDAPError, response: PolicyResponse) -> LDAPError:
    return LDAPError(error.code, error.message, error.matched, error.referrals,
                     error.controls + _controls(op, response))


def _answered(op: Operation, replies: Iterable[Reply], response: PolicyResponse) -> list[Reply]:
    *head, last = list(replies)
    return [*head, Reply(last.op, last.controls + _controls(op, response))]


def _outcome(handler: Handler, op: Operation) -> Deferred[Replies]:
    """The handler's replies as a Deferred; what it raises, as its failure."""
    try:
        outcome = handler(op)
    except Exception:
        return fail()
    return outcome if isinstance(outcome, Deferred) else succeed(outcome)


def _anonymous(op: Operation) -> None:
    op.session.bound = DN.ROOT
    op.session.is_root = False


def _host(op: Operation) -> str:
    host, _, _ = op.session.peer.rpartition(":")
    return host or op.session.peer


def _bind_target(op: Operation) -> DN | None:
    request = op.request
    assert isinstance(request, BindRequest)
    if (request.version != 3 or request.mechanism is not None
            or request.other_method is not None or not request.name or not request.password):
        return None
    try:
        return op.target
    except LDAPError:
        return None


def _root_bind(op: Operation, handler: Handler) -> Outcome:
    backoff = op.dsa.password_policy.backoff
    host = _host(op)
    wait = backoff.refusal(host)
    if wait > 0:
        _anonymous(op)
        raise LDAPError(ResultCode.INVALID_CREDENTIALS,
                        f"too many failed binds from {host}; try again in "
                        f"{math.ceil(wait)} s")
    backoff.started(host)

    def bound(replies: Iterable[Reply]) -> Iterable[Reply]:
        backoff.succeeded(host)
        return replies

    def refused(failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, LDAPError) and error.code == ResultCode.INVALID_CREDENTIALS:
            backoff.failed(host)
        else:
            backoff.finished(host)
        return failure

    return _outcome(handler, op).addCallbacks(bound, refused)


def _entry_bind(op: Operation, handler: Handler, dn: DN, policy: Policy,
                turn: Turn) -> Deferred[Replies]:
    entry = op.dsa.backend.get(dn)
    now = op.dsa.now()
    if entry is None:
        return _outcome(handler, op)
    if state.is_locked(entry, policy, now):
        _anonymous(op)
        raise LDAPError(ResultCode.INVALID_CREDENTIALS, INVALID,
                        controls=_controls(op, PolicyResponse(error=PolicyError.ACCOUNT_LOCKED)))

    def bound(replies: Iterable[Reply]) -> Deferred[Replies]:
        left = state.seconds_left(entry, policy, now)
        response = PolicyResponse()
        grace = False
        if left is not None and left <= 0:
            remaining = policy.grace_logins - len(entry.get(state.GRACE))
            if remaining <= 0:
                _anonymous(op)
                raise LDAPError(ResultCode.INVALID_CREDENTIALS, "password expired",
                                controls=_controls(op, PolicyResponse(
                                    error=PolicyError.PASSWORD_EXPIRED)))
            grace = True
            response = PolicyResponse(grace_authns_remaining=remaining - 1)
        elif left is not None and left < policy.expire_warning:
            response = PolicyResponse(time_before_expiration=int(left))
        recorded: Deferred[None] = succeed(None)
        if state.needs_success_record(entry, grace):
            recorded = op.dsa.write(state.record_success(dn, now, grace))
        return recorded.addCallback(lambda _: _answered(op, replies, response))

    def refused(failure: Failure) -> Replies:
        error = failure.value
        if not isinstance(error, LDAPError):
            failure.raiseException()
        answer = _with_control(op, error, PolicyResponse())
        if error.code == ResultCode.INVALID_CREDENTIALS and policy.lockout_failures:
            written = op.dsa.write(state.record_failure(dn, policy, now))
            written.addErrback(lambda f: log.error("recording a failed bind of %s: %s",
                                                   dn, f.getErrorMessage()))
            turn.until(written)
        raise answer

    return _outcome(handler, op).addCallbacks(bound, refused)


def _bind(op: Operation, handler: Handler) -> Outcome:
    dn = _bind_target(op)
    if dn is None:
        return handler(op)
    if dn == op.dsa.root_dn:
        return _root_bind(op, handler)
    policies = op.dsa.password_policy
    policy = policies.policy_for(dn)
    if policy is None:
        return handler(op)

    def judged(holding: bool) -> Deferred[Replies]:
        turn = Turn(policies.turns, dn, holding)
        try:
            outcome = _entry_bind(op, handler, dn, policy, turn)
        except Exception:
            outcome = fail()
        return outcome.addBoth(turn.end)

    return policies.turns.wait(dn).addCallback(judged)


def _is_password(op: Operation, description: str) -> bool:
    try:
        return resolve(op.dsa.schema, description).type.key == "userpassword"
    except LDAPError:
        return False


def _refuse(op: Operation, problem: PolicyError, policy: Policy) -> LDAPError:
    return LDAPError(ResultCode.CONSTRAINT_VIOLATION, PROBLEMS[problem](policy),
                     controls=_controls(op, PolicyResponse(error=problem)))


def _checked(op: Operation, dn: DN, policy: Policy, new: tuple[bytes, ...]) -> Deferred[None]:
    """Fires when every new clear-text value passes the policy (the root DN's
    are not checked); fails with constraintViolation otherwise."""
    if op.session.is_root or not new:
        return succeed(None)
    for value in new:
        problem = quality.problem(value, policy)
        if problem is not None:
            raise _refuse(op, problem, policy)
    entry = op.dsa.backend.get(dn)
    if entry is None or not policy.history:
        return succeed(None)
    used = (*entry.get("userpassword"), *history.last(entry.get(state.HISTORY), policy.history))
    checks = [history.reused(op, dn, used, value) for value in new]

    def judged(results: list[bool]) -> None:
        if any(results):
            raise _refuse(op, PolicyError.PASSWORD_IN_HISTORY, policy)

    return gatherResults(checks, consumeErrors=True).addCallback(judged)


def _change(op: Operation, handler: Handler, dn: DN, new: tuple[bytes, ...]) -> Outcome:
    policy = op.dsa.password_policy.policy_for(dn)
    if policy is None:
        return handler(op)
    entry = op.dsa.backend.get(dn)
    old = () if entry is None else entry.get("userpassword")

    def changed(replies: Replies) -> Deferred[Replies]:
        job = state.record_change(dn, old, policy, op.dsa.now())
        return op.dsa.write(job).addCallback(lambda _: replies)

    return _checked(op, dn, policy, new).addCallback(
        lambda _: _outcome(handler, op)).addCallback(changed)


def _add(op: Operation, handler: Handler) -> Outcome:
    request = op.request
    assert isinstance(request, AddRequest)
    new = tuple(v for name, values in request.attributes if _is_password(op, name)
                for v in values)
    if not new:
        return handler(op)
    dn = op.target
    policy = op.dsa.password_policy.policy_for(dn)
    if policy is None:
        return handler(op)
    return _checked(op, dn, policy, new).addCallback(lambda _: handler(op))


def _modify(op: Operation, handler: Handler) -> Outcome:
    request = op.request
    assert isinstance(request, ModifyRequest)
    changes = [c for c in request.changes if _is_password(op, c.attribute)]
    if not changes:
        return handler(op)
    new = tuple(v for c in changes if c.op in (ModOp.ADD, ModOp.REPLACE) for v in c.values)
    return _change(op, handler, op.target, new)


def _password_modify_fields(value: bytes | None) -> dict[int, bytes] | None:
    """userIdentity [0] and newPasswd [2] of an RFC 3062 request; None when
    it does not decode (the operation itself then refuses it)."""
    if value is None:
        return {}
    try:
        start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "PasswdModifyRequestValue")
        return {tag: value[s:e] for tag, s, e in ber.children(value, start, end)}
    except ProtocolError:
        return None


def _extended(op: Operation, handler: Handler) -> Outcome:
    request = op.request
    assert isinstance(request, ExtendedRequest)
    if request.name != PASSWORD_MODIFY or op.session.anonymous:
        return handler(op)
    fields = _password_modify_fields(request.value)
    if fields is None:
        return handler(op)
    identity = fields.get(0x80)
    try:
        dn = (op.session.bound if identity is None
              else op.dsa.parse_dn(identity.decode().removeprefix("dn:")))
    except (LDAPError, UnicodeDecodeError):
        return handler(op)
    if not dn or dn == op.dsa.root_dn:
        return handler(op)
    new = fields.get(0x82)
    return _change(op, handler, dn, () if new is None else (new,))


STEPS: Mapping[type, Callable[[Operation, Handler], Outcome]] = {
    BindRequest: _bind,
    AddRequest: _add,
    ModifyRequest: _modify,
    ExtendedRequest: _extended,
}


def overlay(handler: Handler) -> Handler:
    def apply(op: Operation) -> Outcome:
        step = STEPS.get(type(op.request))
        return handler(op) if step is None else step(op, handler)

    return apply
