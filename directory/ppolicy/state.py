"""The password policy state kept in each entry (draft-behera-ldap-password-policy-10 §5.3).

Operational attributes (schema/ppolicy.schema), written only by the server:

- pwdChangedTime: when userPassword last changed (set on add and on every
  change; removed when the password is removed). Without it the password
  never expires: entries imported before the policy expire only after
  their first change.
- pwdFailureTime: one value per failed bind since the last success (at
  most `lockout_failures` kept, the oldest dropped), microsecond times so
  two failures in one second stay two values.
- pwdAccountLockedTime: set (to the microsecond) when the failures reach
  `lockout_failures`; the account is locked while now <
  pwdAccountLockedTime + duration (forever with duration 0) and while the
  policy has a lockout at all. Once a lock has run out, the next wrong
  password locks again (as slapd without pwdFailureCountInterval).
- pwdGraceUseTime: one value per bind after expiry (§5.3.5).
- pwdHistory: old passwords (`history`).

A successful bind removes pwdFailureTime and an expired lock; a password
change removes failures, lock and grace uses, sets pwdChangedTime and
pushes the old stored value into the history. These are state changes, not
user modifications: modifyTimestamp and modifiersName are left alone.
Every writer job re-reads the entry inside the transaction and never
verifies a password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from directory.backend import Transaction
from directory.entry import Entry
from directory.matching import InvalidValue, generalized_time
from directory.ppolicy import history
from directory.ppolicy.config import Policy
from directory.protocol.dn import DN

CHANGED = "pwdchangedtime"
FAILURES = "pwdfailuretime"
LOCKED = "pwdaccountlockedtime"
GRACE = "pwdgraceusetime"
HISTORY = "pwdhistory"
ATTRIBUTES = frozenset({CHANGED, FAILURES, LOCKED, GRACE, HISTORY})

Job = Callable[[Transaction], None]
Attributes = dict[str, tuple[bytes, ...]]


def stamp(when: dt.datetime, fraction: bool = False) -> bytes:
    return when.strftime("%Y%m%d%H%M%S.%fZ" if fraction else "%Y%m%d%H%M%SZ").encode()


def parse_time(value: bytes | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        key = generalized_time(value).decode()
    except InvalidValue:
        return None
    return dt.datetime.strptime(key, "%Y%m%d%H%M%S.%f").replace(tzinfo=dt.UTC)


def is_locked(entry: Entry, policy: Policy, now: dt.datetime) -> bool:
    since = parse_time(entry.first(LOCKED))
    if since is None or not policy.lockout_failures:
        return False
    if not policy.lockout_duration:
        return True
    return now < since + dt.timedelta(seconds=policy.lockout_duration)


def seconds_left(entry: Entry, policy: Policy, now: dt.datetime) -> float | None:
    """Seconds until the password expires (<= 0: expired), None if it never does."""
    changed = parse_time(entry.first(CHANGED))
    if changed is None or not policy.max_age:
        return None
    return (changed + dt.timedelta(seconds=policy.max_age) - now).total_seconds()


def _replace(txn: Transaction, dn: DN, change: Callable[[Attributes], None]) -> None:
    entry = txn.get(dn)
    if entry is None:
        return
    attributes = dict(entry.attributes)
    change(attributes)
    if attributes != dict(entry.attributes):
        txn.replace(entry.with_attributes(attributes))


def _unique(existing: tuple[bytes, ...], when: dt.datetime) -> bytes:
    taken = set(existing)
    value = stamp(when, fraction=True)
    while value in taken:
        when += dt.timedelta(microseconds=1)
        value = stamp(when, fraction=True)
    return value


def record_failure(dn: DN, policy: Policy, now: dt.datetime) -> Job:
    def change(attributes: Attributes) -> None:
        failures = attributes.get(FAILURES, ())
        kept = (*sorted(failures), _unique(failures, now))[-policy.lockout_failures:]
        attributes[FAILURES] = kept
        if len(kept) >= policy.lockout_failures and not is_locked(
                Entry(dn, attributes), policy, now):
            attributes[LOCKED] = (stamp(now, fraction=True),)

    return lambda txn: _replace(txn, dn, change)


def record_success(dn: DN, now: dt.datetime, grace_used: bool) -> Job:
    def change(attributes: Attributes) -> None:
        attributes.pop(FAILURES, None)
        attributes.pop(LOCKED, None)
        if grace_used:
            uses = attributes.get(GRACE, ())
            attributes[GRACE] = (*uses, _unique(uses, now))

    return lambda txn: _replace(txn, dn, change)


def needs_success_record(entry: Entry, grace_used: bool) -> bool:
    return grace_used or FAILURES in entry.attributes or LOCKED in entry.attributes


def record_change(dn: DN, old: tuple[bytes, ...], policy: Policy, now: dt.datetime) -> Job:
    """After userPassword changed from `old` (stored values)."""
    def change(attributes: Attributes) -> None:
        for key in (FAILURES, LOCKED, GRACE):
            attributes.pop(key, None)
        if attributes.get("userpassword"):
            attributes[CHANGED] = (stamp(now),)
        else:
            attributes.pop(CHANGED, None)
        kept = _history(attributes.get(HISTORY, ()), old, policy.history, stamp(now))
        if kept:
            attributes[HISTORY] = kept
        else:
            attributes.pop(HISTORY, None)

    return lambda txn: _replace(txn, dn, change)


def _history(current: tuple[bytes, ...], old: tuple[bytes, ...], count: int,
             when: bytes) -> tuple[bytes, ...]:
    if count <= 0:
        return ()
    parsed = history.oldest_first(current)
    values = [history.value(t, s) for t, s in parsed] + [history.value(when, s) for s in old]
    return tuple(dict.fromkeys(values[-count:]))


def with_changed_time(attributes: Mapping[str, tuple[bytes, ...]],
                      now: dt.datetime) -> Attributes:
    return {**attributes, CHANGED: (stamp(now),)}
