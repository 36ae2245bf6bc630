"""The policy state read from entries, the history format, and which policy applies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from directory.entry import Entry
from directory.ppolicy import history, state
from directory.ppolicy.config import PasswordPolicies, Policy
from directory.ppolicy.policies import Policies
from directory.protocol.dn import DN
from directory.schema import Schema

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
DN_ = DN.parse("uid=a,ou=people,dc=example,dc=com")
LOCKOUT = Policy(subtree="", lockout_failures=3, lockout_duration=60)


def entry(**attributes: bytes) -> Entry:
    return Entry(DN_, {k.lower(): (v,) for k, v in attributes.items()})


@pytest.mark.parametrize("locked_at, policy, expected", [
    (None, LOCKOUT, False),
    (b"20260102030400Z", LOCKOUT, True),
    (b"20260102030305Z", LOCKOUT, False),
    (b"20260102030306Z", LOCKOUT, True),
    (b"20000101000000Z", Policy(subtree="", lockout_failures=3), True),
    (b"20260102030400Z", Policy(subtree=""), False),
    (b"garbage", LOCKOUT, False),
])
def test_is_locked(locked_at: bytes | None, policy: Policy, expected: bool) -> None:
    target = entry() if locked_at is None else entry(pwdAccountLockedTime=locked_at)
    assert state.is_locked(target, policy, NOW) is expected


def test_seconds_left() -> None:
    policy = Policy(subtree="", max_age=100)
    assert state.seconds_left(entry(pwdChangedTime=b"20260102030405Z"), policy, NOW) == 100
    assert state.seconds_left(entry(pwdChangedTime=b"20260102030225Z"), policy, NOW) == 0
    assert state.seconds_left(entry(), policy, NOW) is None
    assert state.seconds_left(entry(pwdChangedTime=b"20260102030405Z"),
                              Policy(subtree=""), NOW) is None


def test_stamps() -> None:
    assert state.stamp(NOW) == b"20260102030405Z"
    assert state.stamp(NOW, fraction=True) == b"20260102030405.000000Z"
    assert state.parse_time(b"20260102030405.5Z") == NOW + dt.timedelta(seconds=0.5)


def test_history_values_round_trip() -> None:
    value = history.value(b"20260102030405Z", b"{SSHA}abc#def")
    assert value == b"20260102030405Z#1.3.6.1.4.1.1466.115.121.1.40#13#{SSHA}abc#def"
    assert history.stored_of(value) == (b"20260102030405Z", b"{SSHA}abc#def")
    assert history.stored_of(b"20260102030405Z#x#99#short") is None
    assert history.stored_of(b"no separators") is None


def test_last_history_values_by_time() -> None:
    values = [history.value(t, s) for t, s in ((b"20260103000000Z", b"c"),
                                               (b"20260101000000Z", b"a"),
                                               (b"20260102000000Z", b"b"))]
    assert history.last(values, 2) == [b"b", b"c"]
    assert history.last(values, 0) == []


def test_history_values_of_one_second_keep_their_stored_order() -> None:
    # Changed within one second: the hashes ("z" before "a") must not decide.
    second = b"20260101000000Z"
    values = [history.value(second, s) for s in (b"z-oldest", b"m-middle", b"a-newest")]
    assert history.last(values, 2) == [b"m-middle", b"a-newest"]


def test_most_specific_subtree_applies() -> None:
    schema = Schema.load([Path(__file__).parents[2] / "schema"])
    outer = Policy(subtree="dc=example,dc=com", min_length=4)
    inner = Policy(subtree="ou=People,dc=example,dc=com", min_length=12)
    policies = Policies(PasswordPolicies((outer, inner)), schema, lambda: NOW)
    assert policies.policy_for(DN.parse("uid=a,ou=people,dc=example,dc=com", schema)) == inner
    assert policies.policy_for(DN.parse("cn=b,dc=example,dc=com", schema)) == outer
    assert policies.policy_for(DN.parse("cn=c,dc=other", schema)) is None
