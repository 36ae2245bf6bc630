"""BER primitives against X.690 and RFC 4511 §5.1.

- INTEGER contents are the shortest two's complement form (X.690 §8.3.2).
- Lengths are encoded in the minimal definite form: short form below 128,
  else 0x80 | number of octets, then the octets (X.690 §8.1.3, §10.1).
- Decoding accepts long forms with leading zeros and up to four length octets,
  and refuses the indefinite form, five or more length octets, the
  high-tag-number form and elements running past their container.
- INTEGER contents are one to eight octets, BOOLEAN exactly one.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.protocol.ber import (
    children,
    decode_bool,
    decode_int,
    encode_bool,
    encode_int,
    encode_length,
    expect,
    header_length,
    read_tlv,
    sequence,
    tlv,
)
from directory.protocol.results import ProtocolError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


INTEGERS: list[tuple[int, bytes]] = [
    # (value, BER) — X.690 §8.3: the shortest two's complement contents
    (0, h("020100")),
    (1, h("020101")),
    (127, h("02017f")),
    (128, h("02020080")),
    (255, h("020200ff")),
    (256, h("02020100")),
    (-1, h("0201ff")),
    (-128, h("020180")),
    (-129, h("0202ff7f")),
    (-256, h("0202ff00")),
    (2**31 - 1, h("02047fffffff")),
    (2**31, h("02050080000000")),
    (-(2**31), h("020480000000")),
]


@pytest.mark.parametrize(("value", "wire"), INTEGERS)
def test_encode_int(value: int, wire: bytes) -> None:
    assert encode_int(value) == wire


@pytest.mark.parametrize(("value", "wire"), INTEGERS)
def test_decode_int(value: int, wire: bytes) -> None:
    assert decode_int(wire, 2, len(wire)) == value


def test_encode_enumerated_uses_the_given_tag() -> None:
    assert encode_int(2, 0x0A) == h("0a0102")


@given(st.integers(-(2**63), 2**63 - 1))
def test_int_round_trip(value: int) -> None:
    wire = encode_int(value)
    tag, start, end = read_tlv(wire, 0, len(wire))
    assert (tag, end) == (0x02, len(wire))
    assert decode_int(wire, start, end) == value


@pytest.mark.parametrize("contents", [b"", bytes(9)], ids=["empty", "nine octets"])
def test_decode_int_size(contents: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_int(contents, 0, len(contents))


def test_decode_int_accepts_eight_octets() -> None:
    assert decode_int(h("7fffffffffffffff"), 0, 8) == 2**63 - 1


LENGTHS: list[tuple[int, bytes]] = [
    # (length, encoded length) — X.690 §8.1.3
    (0, h("00")),
    (1, h("01")),
    (127, h("7f")),
    (128, h("8180")),
    (255, h("81ff")),
    (256, h("820100")),
    (65535, h("82ffff")),
    (65536, h("83010000")),
    (2**24, h("8401000000")),
    (2**32 - 1, h("84ffffffff")),
]


@pytest.mark.parametrize(("length", "wire"), LENGTHS)
def test_encode_length(length: int, wire: bytes) -> None:
    assert encode_length(length) == wire


@pytest.mark.parametrize(("length", "wire"), LENGTHS)
def test_header_length(length: int, wire: bytes) -> None:
    assert header_length(b"\x30" + wire) == (1 + len(wire), length)


@pytest.mark.parametrize("length", [0, 5, 127, 128, 300, 70000])
def test_tlv_wraps_contents(length: int) -> None:
    value = bytes(length)
    wire = tlv(0x04, value)
    assert wire == b"\x04" + encode_length(length) + value
    assert read_tlv(wire, 0, len(wire)) == (0x04, len(wire) - length, len(wire))


TLVS: list[tuple[str, bytes, tuple[int, int, int]]] = [
    # (why, data, (tag, value start, value end))
    ("short form", h("040361 6263"), (0x04, 2, 5)),
    ("empty value", h("0400"), (0x04, 2, 2)),
    ("long form, one octet", h("0481 03 616263"), (0x04, 3, 6)),
    ("long form with leading zeros (four octets)", h("0484 00000003 616263"), (0x04, 6, 9)),
    ("context constructed tag", h("a303 040100"), (0xA3, 2, 5)),
    ("application primitive tag", h("4a01 61"), (0x4A, 2, 3)),
]


@pytest.mark.parametrize(("why", "data", "span"), TLVS, ids=[c[0] for c in TLVS])
def test_read_tlv(why: str, data: bytes, span: tuple[int, int, int]) -> None:
    assert read_tlv(data, 0, len(data)) == span


BAD_TLVS: list[tuple[str, bytes]] = [
    # (why, data)
    ("§5.1 indefinite length", h("3080 0000")),
    ("five length octets", h("0485 0000000001 61")),
    ("high-tag-number form", h("1f2001 61")),
    ("runs past its container", h("0405 6162")),
    ("length octets missing", h("0482 01")),
    ("only the identifier", h("04")),
    ("nothing", b""),
]


@pytest.mark.parametrize(("why", "data"), BAD_TLVS, ids=[c[0] for c in BAD_TLVS])
def test_read_tlv_rejects(why: str, data: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_tlv(data, 0, len(data))


def test_read_tlv_respects_the_container_end() -> None:
    data = h("3005 0403 616263")
    with pytest.raises(ProtocolError):
        read_tlv(data, 2, 6)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", None), (h("30"), None), (h("3084 0000"), None), (h("3084 00000010"), (6, 16)),
     (h("3005 0201"), (2, 5)), (h("3000"), (2, 0))],
)
def test_header_length_needs_only_the_header(data: bytes, expected: tuple[int, int] | None
                                             ) -> None:
    assert header_length(data) == expected


def test_header_length_at_an_offset() -> None:
    assert header_length(bytearray(h("4200 3081 80")), 2) == (3, 128)


@pytest.mark.parametrize("data", [h("3080"), h("3085 0000000001"), h("3f01 00")],
                         ids=["indefinite", "five octets", "high tag"])
def test_header_length_rejects(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        header_length(data)


def test_children_walks_a_constructed_value() -> None:
    data = h("300a 020101 0400 0403 616263")
    assert list(children(data, 2, len(data))) == [(0x02, 4, 5), (0x04, 7, 7), (0x04, 9, 12)]


def test_children_refuses_a_child_past_the_end() -> None:
    data = h("3005 020101 0405")
    with pytest.raises(ProtocolError):
        list(children(data, 2, len(data)))


def test_expect_checks_the_tag() -> None:
    data = h("020105")
    assert expect(data, 0, 3, 0x02, "id") == (2, 3)
    with pytest.raises(ProtocolError):
        expect(data, 0, 3, 0x04, "name")


@pytest.mark.parametrize(("value", "wire"), [(True, h("0101ff")), (False, h("010100"))])
def test_encode_bool(value: bool, wire: bytes) -> None:
    assert encode_bool(value) == wire


@pytest.mark.parametrize(("contents", "value"), [(h("ff"), True), (h("01"), True),
                                                 (h("00"), False)])
def test_decode_bool(contents: bytes, value: bool) -> None:
    assert decode_bool(contents, 0, 1) is value


@pytest.mark.parametrize("contents", [b"", h("0000")], ids=["empty", "two octets"])
def test_decode_bool_size(contents: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_bool(contents, 0, len(contents))


def test_sequence_joins_its_parts() -> None:
    assert sequence([h("020101"), h("0400")]) == h("3005 020101 0400")
    assert sequence([], 0xA0) == h("a000")
