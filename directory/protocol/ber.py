"""The subset of BER that LDAP uses (RFC 4511 §5.1, X.690).

Decoding rules enforced here:

- Only the definite form of length is accepted; the indefinite form (0x80)
  is refused, as RFC 4511 §5.1 requires.
- Long-form lengths may carry leading zero octets (BER allows it and some
  clients always send four length octets) but at most four length octets:
  anything longer cannot fit a PDU certdir accepts.
- An element must lie entirely inside its parent; a length that runs past the
  end of the enclosing element is refused.
- Only single-octet identifiers: every tag LDAP defines is below 31, so the
  high-tag-number form is refused.
- INTEGER and ENUMERATED contents are one to eight octets; BOOLEAN is one.

Encoding always produces the minimal definite form (DER lengths), BOOLEAN
TRUE as 0xFF, and primitive OCTET STRINGs.

This is our own code, not a generic ASN.1 engine: the decoder is on the hot
path of every request (see DESIGN.md, "Own BER codec").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from directory.protocol.results import ProtocolError

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
BOOLEAN = 0x01
ENUMERATED = 0x0A
NULL = 0x05

CONSTRUCTED = 0x20
CONTEXT = 0x80
APPLICATION = 0x40


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Return (tag, value start, value end) of the element starting at `pos`."""
    if pos + 2 > end:
        raise ProtocolError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ProtocolError(f"high-tag-number identifier 0x{tag:02x} at offset {pos}")
    first = data[pos + 1]
    if first < 0x80:
        start = pos + 2
        stop = start + first
    elif first == 0x80:
        raise ProtocolError(f"indefinite length at offset {pos}")
    else:
        count = first & 0x7F
        if count > 4:
            raise ProtocolError(f"length of {count} octets at offset {pos}")
        start = pos + 2 + count
        if start > end:
            raise ProtocolError("truncated length")
        stop = start + int.from_bytes(data[pos + 2 : start], "big")
    if stop > end:
        raise ProtocolError(f"element at offset {pos} runs past its container")
    return tag, start, stop


def header_length(data: bytes | bytearray, pos: int = 0) -> tuple[int, int] | None:
    """Framing helper: (header size, content length) of the element at `pos`,
    or None when more bytes are needed to know."""
    avail = len(data) - pos
    if avail < 2:
        return None
    if data[pos] & 0x1F == 0x1F:
        raise ProtocolError(f"high-tag-number identifier 0x{data[pos]:02x}")
    first = data[pos + 1]
    if first < 0x80:
        return 2, first
    if first == 0x80:
        raise ProtocolError("indefinite length")
    count = first & 0x7F
    if count > 4:
        raise ProtocolError(f"length of {count} octets")
    if avail < 2 + count:
        return None
    return 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")


def children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Iterate over the (tag, start, end) of the elements in data[start:end]."""
    pos = start
    while pos < end:
        tag, vstart, vend = read_tlv(data, pos, end)
        yield tag, vstart, vend
        pos = vend


def decode_int(data: bytes, start: int, end: int) -> int:
    if not 0 < end - start <= 8:
        raise ProtocolError("INTEGER of bad size")
    return int.from_bytes(data[start:end], "big", signed=True)


def decode_bool(data: bytes, start: int, end: int) -> bool:
    if end - start != 1:
        raise ProtocolError("BOOLEAN of bad size")
    return data[start] != 0


def expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read the element at `pos`, which must carry `tag`; return its value span."""
    got, start, stop = read_tlv(data, pos, end)
    if got != tag:
        raise ProtocolError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x}")
    return start, stop


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    return bytes((tag,)) + encode_length(n) + value


def encode_int(n: int, tag: int = INTEGER) -> bytes:
    size = (n + (n < 0)).bit_length() // 8 + 1
    return tlv(tag, n.to_bytes(size, "big", signed=True))


def encode_bool(value: bool, tag: int = BOOLEAN) -> bytes:
    return bytes((tag, 1, 0xFF if value else 0x00))


def octets(value: bytes, tag: int = OCTET_STRING) -> bytes:
    return tlv(tag, value)


def sequence(parts: Iterable[bytes], tag: int = SEQUENCE) -> bytes:
    return tlv(tag, b"".join(parts))
