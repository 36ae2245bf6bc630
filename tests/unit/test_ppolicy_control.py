"""The password policy response control (draft-behera-ldap-password-policy-10 §6.2).

Cases are bytes <-> value in both directions: the warning is an explicitly
tagged CHOICE (0xA0 around 0x80 timeBeforeExpiration or 0x81
graceAuthNsRemaining), the error an implicit [1] ENUMERATED (0x81). The
error values are the ones libldap's ldap_parse_passwordpolicy_control
decoded for ldappasswd in scenario 067.
"""

from __future__ import annotations

import pytest

from directory.protocol.controls import CONTROLS, parse_controls
from directory.protocol.messages import BindRequest, Control, DelRequest
from directory.protocol.ppolicy_control import (
    PASSWORD_POLICY,
    PolicyError,
    PolicyResponse,
    decode,
)
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

CASES = [
    ("nothing to say", "3000", PolicyResponse()),
    ("expires in 999 s", "3006a004800203e7", PolicyResponse(time_before_expiration=999)),
    ("expires now", "3005a003800100", PolicyResponse(time_before_expiration=0)),
    ("one grace login left", "3005a003810101", PolicyResponse(grace_authns_remaining=1)),
    ("account locked", "3003810101", PolicyResponse(error=PolicyError.ACCOUNT_LOCKED)),
    ("password expired", "3003810100", PolicyResponse(error=PolicyError.PASSWORD_EXPIRED)),
    ("too short", "3003810106", PolicyResponse(error=PolicyError.PASSWORD_TOO_SHORT)),
    ("quality", "3003810105",
     PolicyResponse(error=PolicyError.INSUFFICIENT_PASSWORD_QUALITY)),
    ("in history", "3003810108", PolicyResponse(error=PolicyError.PASSWORD_IN_HISTORY)),
    ("warning and error", "3008a003810100810100",
     PolicyResponse(grace_authns_remaining=0, error=PolicyError.PASSWORD_EXPIRED)),
    ("large warning", "3008a006800400ffffff",
     PolicyResponse(time_before_expiration=0xFFFFFF)),
]


@pytest.mark.parametrize("why, wire, value", CASES, ids=[c[0] for c in CASES])
def test_encode(why: str, wire: str, value: PolicyResponse) -> None:
    assert value.encode().hex() == wire


@pytest.mark.parametrize("why, wire, value", CASES, ids=[c[0] for c in CASES])
def test_decode(why: str, wire: str, value: PolicyResponse) -> None:
    assert decode(bytes.fromhex(wire)) == value


BROKEN = [
    ("not a sequence", "0400"),
    ("trailing data", "300000"),
    ("error before warning", "3008810100a003810100"),
    ("two errors", "3006810100810101"),
    ("unknown field", "3003820100"),
    ("unknown error code", "3003810163"),
    ("empty warning", "3002a000"),
    ("two warning alternatives", "3008a006800100810100"),
    ("unknown warning alternative", "3005a003820100"),
    ("negative warning", "3005a0038001ff"),
]


@pytest.mark.parametrize("why, wire", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_values_are_refused(why: str, wire: str) -> None:
    with pytest.raises(ProtocolError):
        decode(bytes.fromhex(wire))


def test_one_warning_only() -> None:
    with pytest.raises(ValueError):
        PolicyResponse(time_before_expiration=1, grace_authns_remaining=1)


def test_response_control_is_not_critical() -> None:
    control = PolicyResponse(error=PolicyError.ACCOUNT_LOCKED).to_control()
    assert control == Control(PASSWORD_POLICY, False, bytes.fromhex("3003810101"))


def test_request_control_is_registered_without_value() -> None:
    assert PASSWORD_POLICY in CONTROLS
    bind = BindRequest(3, "cn=x", b"pw")
    assert PASSWORD_POLICY in parse_controls(bind, (Control(PASSWORD_POLICY, False, None),))
    with pytest.raises(LDAPError) as refused:
        parse_controls(bind, (Control(PASSWORD_POLICY, False, b"\x30\x00"),))
    assert refused.value.code == ResultCode.PROTOCOL_ERROR


def test_request_control_is_ignored_on_delete() -> None:
    delete = DelRequest("cn=x")
    assert parse_controls(delete, (Control(PASSWORD_POLICY, False, None),)) == {}
