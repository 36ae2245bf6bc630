"""Password history (draft-behera-ldap-password-policy-10 §5.3.7 pwdHistory).

- Each pwdHistory value is `time#syntax#length#data` as slapd writes it:
  the GeneralizedTime the password stopped being current, the syntax OID
  of userPassword's values (Octet String), the length of the data, and the
  stored (hashed) value itself. Values that do not parse are ignored.
- A new password is refused when it verifies against the current password
  or any of the last `history` old ones (passwordInHistory).
- Verifying means hashing: `reused` runs it on the password queue, in the
  client's lane (`directory.ops.userpassword`), never on the reactor thread
  or in the writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from directory.deferreds import from_coroutine
from directory.operation import Operation
from directory.ops import userpassword
from directory.protocol.dn import DN

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


OCTET_STRING = b"1.3.6.1.4.1.1466.115.121.1.40"


def value(when: bytes, stored: bytes) -> bytes:
    return b"#".join((when, OCTET_STRING, str(len(stored)).encode(), stored))


def stored_of(history_value: bytes) -> tuple[bytes, bytes] | None:
    """(time, stored password) of one pwdHistory value, or None."""
    parts = history_value.split(b"#", 3)
    if len(parts) != 4 or not parts[2].isdigit() or int(parts[2]) != len(parts[3]):
        return None
    return parts[0], parts[3]


def oldest_first(history: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    """(time, stored password) of the values that parse, oldest first. Times
    have whole seconds, so values of one second keep their stored order
    (oldest first, as they are appended): a stable sort on the time alone,
    never on the hash, which would order them at random."""
    return sorted((p for v in history if (p := stored_of(v)) is not None),
                  key=lambda parsed: parsed[0])


def last(history: Sequence[bytes], count: int) -> list[bytes]:
    """The stored passwords of the `count` most recent history values."""
    parsed = oldest_first(history)
    return [stored for _, stored in parsed[-count:]] if count > 0 else []


def reused(op: Operation, dn: DN, stored: Sequence[bytes], password: bytes) -> Deferred[bool]:
    """Whether `password` verifies against any of the `stored` values."""

    async def found() -> bool:
        return await userpassword.check(op, dn, stored, password) is not None

    return from_coroutine(found())
