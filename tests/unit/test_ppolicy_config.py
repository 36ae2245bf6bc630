"""certdir.yaml `password_policy` and `root_backoff`: typed settings, bad keys named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certdir.config import ConfigError, from_mapping
from directory.ppolicy.config import PasswordPolicies, Policy, RootBackoff

HASH = "{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"


def load(tmp_path: Path, **extra: Any) -> PasswordPolicies:
    data = {"suffix": "dc=example,dc=com", "root": {"password_hash": HASH}, **extra}
    return from_mapping(data, tmp_path).directory.password_policy


def test_defaults_no_policy_and_root_backoff_on(tmp_path: Path) -> None:
    assert load(tmp_path) == PasswordPolicies((), RootBackoff(failures=5, delay=1,
                                                              max_delay=60))


def test_a_full_policy(tmp_path: Path) -> None:
    settings = load(tmp_path, password_policy=[{
        "subtree": "ou=people,dc=example,dc=com", "min_length": 12, "min_classes": 3,
        "history": 5, "max_age": "90d", "expire_warning": "14d", "grace_logins": 3,
        "lockout": {"failures": 5, "duration": "15m"}}],
        root_backoff={"failures": 10, "delay": 2, "max_delay": "1h"})
    assert settings.policies == (Policy(
        subtree="ou=people,dc=example,dc=com", min_length=12, min_classes=3, history=5,
        max_age=90 * 86400, expire_warning=14 * 86400, grace_logins=3, lockout_failures=5,
        lockout_duration=900),)
    assert settings.root_backoff == RootBackoff(failures=10, delay=2, max_delay=3600)


BAD = [
    ("not a list", {"password_policy": {"subtree": "o=x"}},
     "password_policy: expected a list"),
    ("item not a mapping", {"password_policy": ["o=x"]},
     "password_policy[0]: expected a mapping"),
    ("no subtree", {"password_policy": [{"min_length": 3}]},
     "password_policy[0].subtree: required key is missing"),
    ("bad subtree", {"password_policy": [{"subtree": "not a dn"}]},
     "password_policy[0].subtree: 'not a dn' is not a DN"),
    ("unknown key", {"password_policy": [{"subtree": "o=x", "min_lenght": 3}]},
     "password_policy[0].min_lenght: unknown key"),
    ("unknown lockout key", {"password_policy": [{"subtree": "o=x", "lockout": {"tries": 3}}]},
     "password_policy[0].lockout.tries: unknown key"),
    ("negative length", {"password_policy": [{"subtree": "o=x", "min_length": -1}]},
     "password_policy[0].min_length: -1 is not allowed"),
    ("five classes", {"password_policy": [{"subtree": "o=x", "min_classes": 5}]},
     "password_policy[0].min_classes: 5 is not allowed"),
    ("bad duration", {"password_policy": [{"subtree": "o=x", "max_age": "90 days"}]},
     "password_policy[0].max_age: '90 days' is not a duration"),
    ("bool duration", {"password_policy": [{"subtree": "o=x", "max_age": True}]},
     "password_policy[0].max_age: expected a duration"),
    ("negative duration", {"password_policy": [{"subtree": "o=x", "max_age": -5}]},
     "password_policy[0].max_age: -5 is not allowed"),
    ("unknown backoff key", {"root_backoff": {"seconds": 3}}, "root_backoff.seconds: unknown key"),
    ("negative backoff", {"root_backoff": {"failures": -1}},
     "root_backoff.failures: -1 is not allowed"),
]


@pytest.mark.parametrize("why, extra, message", BAD, ids=[c[0] for c in BAD])
def test_bad_settings_are_named(tmp_path: Path, why: str, extra: dict[str, Any],
                                message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **extra)
    assert message in str(error.value)
