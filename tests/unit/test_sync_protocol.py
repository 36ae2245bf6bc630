"""RFC 4533 wire forms: bytes <-> values in both directions, and OpenLDAP cookies.

The vectors were checked against python-ldap's pyasn1 definitions
(ldap.syncrepl), which decode every one of them to the same fields; DER
leaves out a BOOLEAN equal to its DEFAULT, so reloadHint FALSE, refreshDone
TRUE and refreshDeletes FALSE never appear on the wire.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directory.protocol.results import ProtocolError
from directory.protocol.sync import (
    SYNC_INFO,
    Cookie,
    Mode,
    NewCookie,
    RefreshDelete,
    RefreshPresent,
    State,
    SyncDone,
    SyncIdSet,
    SyncInfo,
    SyncRequest,
    SyncState,
    decode_info,
    info_message,
)

UUID = bytes(range(16))
UUID_HEX = UUID.hex()

REQUESTS = [
    ("refreshOnly, no cookie", "30030a0101", SyncRequest(Mode.REFRESH_ONLY)),
    ("refreshAndPersist with cookie", "30120a0103040d7269643d3030312c63736e3d78",
     SyncRequest(Mode.REFRESH_AND_PERSIST, b"rid=001,csn=x")),
    ("reloadHint", "30060a01010101ff", SyncRequest(Mode.REFRESH_ONLY, None, True)),
]


@pytest.mark.parametrize("why, wire, value", REQUESTS, ids=[c[0] for c in REQUESTS])
def test_request(why: str, wire: str, value: SyncRequest) -> None:
    assert value.encode().hex() == wire
    assert SyncRequest.decode(bytes.fromhex(wire)) == value


def test_request_control_is_critical_by_default() -> None:
    control = SyncRequest(Mode.REFRESH_ONLY).to_control()
    assert (control.oid, control.critical) == ("1.3.6.1.4.1.4203.1.9.1.1", True)


STATES = [
    ("add with cookie", "301e0a0101041000010203040506070809" "0a0b0c0d0e0f04077269643d303031",
     SyncState(State.ADD, UUID, b"rid=001")),
    ("present", f"30150a01000410{UUID_HEX}", SyncState(State.PRESENT, UUID)),
    ("delete", f"30150a01030410{UUID_HEX}", SyncState(State.DELETE, UUID)),
    ("modify", f"30150a01020410{UUID_HEX}", SyncState(State.MODIFY, UUID)),
]


@pytest.mark.parametrize("why, wire, value", STATES, ids=[c[0] for c in STATES])
def test_state(why: str, wire: str, value: SyncState) -> None:
    assert value.encode().hex() == wire
    assert SyncState.decode(bytes.fromhex(wire)) == value


DONES = [
    ("empty", "3000", SyncDone()),
    ("cookie and refreshDeletes", "30060401630101ff", SyncDone(b"c", True)),
    ("cookie only", "3003040163", SyncDone(b"c")),
]


@pytest.mark.parametrize("why, wire, value", DONES, ids=[c[0] for c in DONES])
def test_done(why: str, wire: str, value: SyncDone) -> None:
    assert value.encode().hex() == wire
    assert SyncDone.decode(bytes.fromhex(wire)) == value


INFOS: list[tuple[str, str, SyncInfo]] = [
    ("newcookie", "8003616263", NewCookie(b"abc")),
    ("refreshDelete not done", "a106040163010100", RefreshDelete(b"c", False)),
    ("refreshPresent done, no cookie", "a200", RefreshPresent()),
    ("refreshPresent not done", "a203010100", RefreshPresent(None, False)),
    ("syncIdSet of deletes", f"a32c04016b0101ff31240410{UUID_HEX}0410{UUID_HEX}",
     SyncIdSet((UUID, UUID), b"k", True)),
    ("syncIdSet of presents", "a3023100", SyncIdSet(())),
]


@pytest.mark.parametrize("why, wire, value", INFOS, ids=[c[0] for c in INFOS])
def test_info(why: str, wire: str, value: SyncInfo) -> None:
    assert value.encode().hex() == wire
    assert decode_info(bytes.fromhex(wire)) == value


def test_info_message_is_an_intermediate_response() -> None:
    message = info_message(NewCookie(b"x"))
    assert (message.name, message.value) == (SYNC_INFO, b"\x80\x01x")


BROKEN = [
    ("request: unknown mode 2", SyncRequest.decode, "30030a0102"),
    ("request: no mode", SyncRequest.decode, "3000"),
    ("request: trailing data", SyncRequest.decode, "30030a010100"),
    ("request: hint before cookie", SyncRequest.decode, "30080a01010101ff040163"),
    ("state: short uuid", SyncState.decode, "30070a0101040200ff"),
    ("state: no uuid", SyncState.decode, "30030a0101"),
    ("state: unknown state", SyncState.decode, f"30150a01040410{UUID_HEX}"),
    ("done: not a sequence", SyncDone.decode, "0400"),
    ("info: unknown choice", decode_info, "a400"),
    ("info: syncIdSet without uuids", decode_info, "a300"),
    ("info: syncIdSet with a short uuid", decode_info, "a30431020400"),
    ("info: trailing data", decode_info, "800000"),
]


@pytest.mark.parametrize("why, parse, wire", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken(why: str, parse: Callable[[bytes], object], wire: str) -> None:
    with pytest.raises(ProtocolError):
        parse(bytes.fromhex(wire))


CSN1 = "20261201183700.000001Z#000000#001#000000"
CSN2 = "20261201183800.000002Z#000003#002#000000"

COOKIES = [
    ("rid only", "rid=001", Cookie(rid=1)),
    ("rid and sid", "rid=042,sid=01a", Cookie(rid=42, sid=0x1A)),
    ("one csn", f"rid=001,sid=001,csn={CSN1}", Cookie(1, 1, (CSN1,))),
    ("two csns", f"rid=123,csn={CSN1};{CSN2}", Cookie(123, None, (CSN1, CSN2))),
    ("delcsn", f"rid=001,csn={CSN1},delcsn={CSN1}", Cookie(1, None, (CSN1,), CSN1)),
    ("csn alone", f"csn={CSN2}", Cookie(csns=(CSN2,))),
]


@pytest.mark.parametrize("why, text, cookie", COOKIES, ids=[c[0] for c in COOKIES])
def test_cookie(why: str, text: str, cookie: Cookie) -> None:
    assert cookie.encode() == text.encode()
    assert Cookie.parse(text.encode()) == cookie


def test_cookie_skips_unknown_keywords() -> None:
    assert Cookie.parse(f"rid=001,foo=bar,csn={CSN1}".encode()) == Cookie(1, None, (CSN1,))


def test_cookie_of_keeps_the_newest_csn_per_server() -> None:
    older = "20261201180000.000000Z#000000#002#000000"
    assert Cookie.of([CSN2, CSN1, older], rid=7) == Cookie(7, None, (CSN1, CSN2))
    assert Cookie(csns=(CSN1, CSN2)).csn_for(2) == CSN2
    assert Cookie(csns=(CSN1,)).csn_for(2) is None


BAD_COOKIES = [
    ("rid too large", "rid=1000"),
    ("rid not a number", "rid=x"),
    ("sid too large", "sid=1000"),
    ("not a csn", "rid=001,csn=yesterday"),
    ("two csns of one server", f"csn={CSN1};{CSN1}"),
    ("csns out of server order", f"csn={CSN2};{CSN1}"),
    ("not ascii", "rid=001,csn=\u00e9"),
]


@pytest.mark.parametrize("why, text", BAD_COOKIES, ids=[c[0] for c in BAD_COOKIES])
def test_bad_cookie(why: str, text: str) -> None:
    with pytest.raises(ProtocolError):
        Cookie.parse(text.encode())
