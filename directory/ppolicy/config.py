"""Password policy settings (certdir.yaml `password_policy`, `root_backoff`).

- A `Policy` applies to the entries of its subtree; where subtrees nest the
  most specific (longest) one applies. Without policies nothing is checked
  or recorded: no quality rules, no expiry, no lockout.
- Durations are seconds. Zero turns a rule off: `max_age` 0 never expires,
  `lockout_failures` 0 never locks, `history` 0 keeps no history; a
  `lockout_duration` of 0 keeps the account locked until its password is
  set again (draft-behera §5.2 pwdLockoutDuration).
- `RootBackoff` is for the root DN, which is no entry and has no policy:
  after `failures` failed binds from one address, root binds from that
  address are refused for `delay` seconds, doubled with each further
  failure up to `max_delay`. `failures` 0 turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Policy:
    subtree: str
    min_length: int = 0
    min_classes: int = 0
    history: int = 0
    max_age: int = 0
    expire_warning: int = 0
    grace_logins: int = 0
    lockout_failures: int = 0
    lockout_duration: int = 0


@dataclass(frozen=True, slots=True)
class RootBackoff:
    failures: int = 5
    delay: float = 1.0
    max_delay: float = 60.0


@dataclass(frozen=True, slots=True)
class PasswordPolicies:
    policies: tuple[Policy, ...] = ()
    root_backoff: RootBackoff = RootBackoff()
