"""Password quality (draft-behera-ldap-password-policy-10 §5.2 pwdMinLength,
pwdCheckQuality).

- The length is counted in characters of the UTF-8 value (octets when the
  value is not UTF-8); shorter than `min_length` is passwordTooShort.
- Quality is the number of character classes used, of four: lower-case
  letters, upper-case letters, digits, and anything else (punctuation,
  spaces, letters without case); fewer than `min_classes` is
  insufficientPasswordQuality.
- The value checked is what the client sent: the overlay sees the request
  before the operation hashes it.
"""

from __future__ import annotations

from collections.abc import Callable

from directory.ppolicy.config import Policy
from directory.protocol.ppolicy_control import PolicyError

CLASSES: tuple[Callable[[str], bool], ...] = (
    str.islower,
    str.isupper,
    str.isdigit,
    lambda c: not (c.islower() or c.isupper() or c.isdigit()),
)


def _text(password: bytes) -> str:
    try:
        return password.decode("utf-8")
    except UnicodeDecodeError:
        return password.decode("latin-1")


def classes(text: str) -> int:
    return sum(any(test(c) for c in text) for test in CLASSES)


def problem(password: bytes, policy: Policy) -> PolicyError | None:
    """What is wrong with `password` under `policy`, or None."""
    text = _text(password)
    if len(text) < policy.min_length:
        return PolicyError.PASSWORD_TOO_SHORT
    if classes(text) < policy.min_classes:
        return PolicyError.INSUFFICIENT_PASSWORD_QUALITY
    return None
