"""Password quality: minimum length in characters, character classes used."""

from __future__ import annotations

import pytest

from directory.ppolicy.config import Policy
from directory.ppolicy.quality import classes, problem
from directory.protocol.ppolicy_control import PolicyError

POLICY = Policy(subtree="dc=example,dc=com", min_length=8, min_classes=3)

CASES = [
    ("long and varied", "Secret-pw1", None),
    ("too short", "Ab1-", PolicyError.PASSWORD_TOO_SHORT),
    ("short beats quality", "abc", PolicyError.PASSWORD_TOO_SHORT),
    ("one class", "onlylowercase", PolicyError.INSUFFICIENT_PASSWORD_QUALITY),
    ("two classes", "lower12345", PolicyError.INSUFFICIENT_PASSWORD_QUALITY),
    ("three classes", "Lower12345", None),
    ("space counts as other", "lower 1234", None),
    ("characters, not octets", "Éééééé1", PolicyError.PASSWORD_TOO_SHORT),
    ("letters without case are other", "日本語の秘密abc1", None),
]


@pytest.mark.parametrize("why, password, expected", CASES, ids=[c[0] for c in CASES])
def test_problem(why: str, password: str, expected: PolicyError | None) -> None:
    assert problem(password.encode(), POLICY) == expected


def test_not_utf8_counts_octets() -> None:
    assert problem(b"\xff" * 8, Policy(subtree="", min_length=8)) is None
    assert problem(b"\xff" * 7, Policy(subtree="", min_length=8)) == \
        PolicyError.PASSWORD_TOO_SHORT


def test_no_rules_accept_anything() -> None:
    assert problem(b"", Policy(subtree="")) is None


@pytest.mark.parametrize("text, count", [("", 0), ("a", 1), ("aA", 2), ("aA1", 3),
                                         ("aA1!", 4), ("!!!!", 1)])
def test_classes(text: str, count: int) -> None:
    assert classes(text) == count
