"""The password policy controls (draft-behera-ldap-password-policy-10 §6).

- Request and response share the OID 1.3.6.1.4.1.42.2.27.8.5.1. The
  request carries no value (§6.1); the server answers with the response
  control only when the client sent the request (as slapd does).
- The response value (§6.2), in a module with IMPLICIT TAGS:

      PasswordPolicyResponseValue ::= SEQUENCE {
         warning [0] CHOICE {
            timeBeforeExpiration [0] INTEGER (0 .. maxInt),
            graceAuthNsRemaining [1] INTEGER (0 .. maxInt) } OPTIONAL,
         error   [1] ENUMERATED { ... } OPTIONAL }

  A tagged CHOICE is always explicitly tagged (X.680 §31.2.7), so the
  warning is a constructed [0] (0xA0) around a primitive [0] or [1]; the
  error is a primitive [1] (0x81). At most one warning alternative is set.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from directory.protocol import ber
from directory.protocol.ber import children, decode_int, encode_int, tlv
from directory.protocol.messages import MAX_INT, Control
from directory.protocol.results import ProtocolError

PASSWORD_POLICY = "1.3.6.1.4.1.42.2.27.8.5.1"

WARNING = ber.CONTEXT | ber.CONSTRUCTED | 0
TIME_BEFORE_EXPIRATION = ber.CONTEXT | 0
GRACE_AUTHNS_REMAINING = ber.CONTEXT | 1
ERROR = ber.CONTEXT | 1
FIELD_ORDER = {WARNING: 0, ERROR: 1}


class PolicyError(enum.IntEnum):
    PASSWORD_EXPIRED = 0
    ACCOUNT_LOCKED = 1
    CHANGE_AFTER_RESET = 2
    PASSWORD_MOD_NOT_ALLOWED = 3
    MUST_SUPPLY_OLD_PASSWORD = 4
    INSUFFICIENT_PASSWORD_QUALITY = 5
    PASSWORD_TOO_SHORT = 6
    PASSWORD_TOO_YOUNG = 7
    PASSWORD_IN_HISTORY = 8


@dataclass(frozen=True, slots=True)
class PolicyResponse:
    """One response control value; `None` fields are absent."""
    time_before_expiration: int | None = None
    grace_authns_remaining: int | None = None
    error: PolicyError | None = None

    def __post_init__(self) -> None:
        if self.time_before_expiration is not None and self.grace_authns_remaining is not None:
            raise ValueError("the warning is one of timeBeforeExpiration or graceAuthNsRemaining")
        for value in (self.time_before_expiration, self.grace_authns_remaining):
            if value is not None and not 0 <= value <= MAX_INT:
                raise ValueError(f"warning value {value} outside 0..maxInt")

    def encode(self) -> bytes:
        body = b""
        if self.time_before_expiration is not None:
            body += tlv(WARNING, encode_int(self.time_before_expiration, TIME_BEFORE_EXPIRATION))
        elif self.grace_authns_remaining is not None:
            body += tlv(WARNING, encode_int(self.grace_authns_remaining, GRACE_AUTHNS_REMAINING))
        if self.error is not None:
            body += encode_int(self.error, ERROR)
        return tlv(ber.SEQUENCE, body)

    def to_control(self) -> Control:
        return Control(PASSWORD_POLICY, False, self.encode())


def _warning(data: bytes, start: int, end: int) -> tuple[int | None, int | None]:
    inner = list(children(data, start, end))
    if len(inner) != 1:
        raise ProtocolError("the warning holds exactly one alternative")
    tag, s, e = inner[0]
    value = decode_int(data, s, e)
    if not 0 <= value <= MAX_INT:
        raise ProtocolError(f"warning value {value} outside 0..maxInt")
    if tag == TIME_BEFORE_EXPIRATION:
        return value, None
    if tag == GRACE_AUTHNS_REMAINING:
        return None, value
    raise ProtocolError(f"unknown warning alternative 0x{tag:02x}")


def decode(value: bytes) -> PolicyResponse:
    start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "PasswordPolicyResponseValue")
    if end != len(value):
        raise ProtocolError("data after the password policy response")
    expiration = grace = None
    error = None
    last = -1
    for tag, s, e in children(value, start, end):
        position = FIELD_ORDER.get(tag)
        if position is None:
            raise ProtocolError(f"unknown password policy field 0x{tag:02x}")
        if position <= last:
            raise ProtocolError(f"field 0x{tag:02x} out of order or repeated")
        last = position
        if tag == WARNING:
            expiration, grace = _warning(value, s, e)
        else:
            code = decode_int(value, s, e)
            try:
                error = PolicyError(code)
            except ValueError:
                raise ProtocolError(f"unknown password policy error {code}") from None
    return PolicyResponse(expiration, grace, error)
