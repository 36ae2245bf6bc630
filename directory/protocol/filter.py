"""Search filters: RFC 4511 §4.5.1.7 BER and RFC 4515 string form.

- Ten filter choices: and [0], or [1], not [2], equalityMatch [3],
  substrings [4], greaterOrEqual [5], lessOrEqual [6], present [7],
  approxMatch [8], extensibleMatch [9].
- An empty and/or is the absolute true/false filter of RFC 4526.
- substrings holds at least one piece; `initial` may only come first and
  `final` only last (RFC 4511 §4.5.1.7.2).
- extensibleMatch needs a matching rule or a type (RFC 4511 §4.5.1.7.7).
- Decoding is bounded by `FilterLimits`: nesting depth and the number of
  filter items, substrings pieces counted as items, so a hostile PDU cannot
  exhaust the stack or the CPU; no configuration may allow nesting deeper
  than `MAX_DEPTH`. The string form's nesting is bounded by the default
  depth.
- String form: values escape `*()\\` and NUL as `\\XX` (RFC 4515 §3);
  `format` writes any other non-printable octet the same way, so its
  output always parses back to the same filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from directory.protocol import ber
from directory.protocol.ber import children, read_tlv, tlv
from directory.protocol.results import ProtocolError

# The deepest nesting any configuration may allow: decoding, compiling,
# planning and printing a filter recurse once per level, and this leaves
# Python's stack room to spare under the server's own frames.
MAX_DEPTH = 256


@dataclass(frozen=True, slots=True)
class FilterLimits:
    max_depth: int = 64
    max_items: int = 1024


@dataclass(frozen=True, slots=True)
class And:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    filter: Filter


@dataclass(init=False, unsafe_hash=True, slots=True)
class Equality:
    attribute: Final[str]
    value: Final[bytes]

    def __init__(self, attribute: str, value: bytes) -> None:
        self.attribute = attribute
        self.value = value


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Approx:
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Present:
    attribute: str


@dataclass(frozen=True, slots=True)
class Substrings:
    attribute: str
    initial: bytes | None
    any: tuple[bytes, ...]
    final: bytes | None


@dataclass(frozen=True, slots=True)
class Extensible:
    rule: str | None
    attribute: str | None
    value: bytes
    dn_attributes: bool = False


Filter = (And | Or | Not | Equality | GreaterOrEqual | LessOrEqual | Approx | Present
          | Substrings | Extensible)

_AVA_TAGS: dict[int, type[Equality | GreaterOrEqual | LessOrEqual | Approx]] = {
    0xA3: Equality, 0xA5: GreaterOrEqual, 0xA6: LessOrEqual, 0xA8: Approx,
}
_AVA_OPS: dict[type, tuple[int, str]] = {
    cls: (tag, op)
    for (tag, cls), op in zip(_AVA_TAGS.items(), ("=", ">=", "<=", "~="), strict=True)
}


class FilterSyntaxError(ValueError):
    """A string filter that RFC 4515 does not allow."""


# --- BER -------------------------------------------------------------------

class _Budget:
    __slots__ = ("items", "limits")

    def __init__(self, limits: FilterLimits) -> None:
        self.limits = limits
        self.items = 0

    def spend(self, depth: int) -> None:
        self.items += 1
        if self.items > self.limits.max_items:
            raise ProtocolError(f"filter has more than {self.limits.max_items} items")
        if depth > self.limits.max_depth:
            raise ProtocolError(f"filter nested deeper than {self.limits.max_depth}")


def from_ber(data: bytes, start: int, end: int, tag: int, depth: int,
             limits: FilterLimits) -> Filter:
    """Decode the filter whose contents are data[start:end] under `tag`."""
    return _decode(data, start, end, tag, depth, _Budget(limits))


def _text(data: bytes, start: int, end: int, what: str) -> str:
    try:
        return data[start:end].decode()
    except UnicodeDecodeError:
        raise ProtocolError(f"filter {what} is not UTF-8") from None


def _decode(data: bytes, start: int, end: int, tag: int, depth: int, budget: _Budget) -> Filter:
    budget.spend(depth)
    if tag in (0xA0, 0xA1):
        parts = tuple(_decode(data, s, e, t, depth + 1, budget)
                      for t, s, e in children(data, start, end))
        return And(parts) if tag == 0xA0 else Or(parts)
    if tag == 0xA2:
        t, s, e = read_tlv(data, start, end)
        if e != end:
            raise ProtocolError("not filter has trailing data")
        return Not(_decode(data, s, e, t, depth + 1, budget))
    if tag in _AVA_TAGS:
        s, e = ber.expect(data, start, end, ber.OCTET_STRING, "filter attribute")
        vs, ve = ber.expect(data, e, end, ber.OCTET_STRING, "filter value")
        if ve != end:
            raise ProtocolError("filter assertion has trailing data")
        return _AVA_TAGS[tag](_text(data, s, e, "attribute"), data[vs:ve])
    if tag == 0x87:
        return Present(_text(data, start, end, "attribute"))
    if tag == 0xA4:
        return _decode_substrings(data, start, end, depth, budget)
    if tag == 0xA9:
        return _decode_extensible(data, start, end)
    raise ProtocolError(f"unknown filter choice 0x{tag:02x}")


def _decode_substrings(data: bytes, start: int, end: int, depth: int,
                       budget: _Budget) -> Substrings:
    s, e = ber.expect(data, start, end, ber.OCTET_STRING, "substrings attribute")
    attribute = _text(data, s, e, "attribute")
    ps, pe = ber.expect(data, e, end, ber.SEQUENCE, "substrings pieces")
    if pe != end:
        raise ProtocolError("substrings filter has trailing data")
    initial = final = None
    middle: list[bytes] = []
    count = 0
    for t, s2, e2 in children(data, ps, pe):
        if count:
            budget.spend(depth)
        if final is not None:
            raise ProtocolError("substrings piece after the final one")
        value = data[s2:e2]
        if t == 0x80 and count == 0:
            initial = value
        elif t == 0x81:
            middle.append(value)
        elif t == 0x82:
            final = value
        else:
            raise ProtocolError("substrings piece out of place or unknown")
        count += 1
    if not count:
        raise ProtocolError("substrings filter has no pieces")
    return Substrings(attribute, initial, tuple(middle), final)


def _decode_extensible(data: bytes, start: int, end: int) -> Extensible:
    fields: dict[int, bytes] = {}
    order = []
    for t, s, e in children(data, start, end):
        if t in fields or t not in (0x81, 0x82, 0x83, 0x84):
            raise ProtocolError(f"bad extensible match element 0x{t:02x}")
        fields[t] = data[s:e]
        order.append(t)
    if order != sorted(order) or 0x83 not in fields:
        raise ProtocolError("extensible match needs matchValue, in order")
    rule = fields.get(0x81)
    attribute = fields.get(0x82)
    if rule is None and attribute is None:
        raise ProtocolError("extensible match needs a matching rule or a type")
    dn_attributes = False
    if 0x84 in fields:
        flag = fields[0x84]
        dn_attributes = ber.decode_bool(flag, 0, len(flag))
    return Extensible(
        None if rule is None else _text(rule, 0, len(rule), "matching rule"),
        None if attribute is None else _text(attribute, 0, len(attribute), "attribute"),
        fields[0x83], dn_attributes)


def to_ber(f: Filter) -> bytes:
    """The BER of `f`."""
    if isinstance(f, And | Or):
        return tlv(0xA0 if isinstance(f, And) else 0xA1, b"".join(to_ber(p) for p in f.filters))
    if isinstance(f, Not):
        return tlv(0xA2, to_ber(f.filter))
    if isinstance(f, Present):
        return tlv(0x87, f.attribute.encode())
    if isinstance(f, Substrings):
        pieces = ([ber.octets(f.initial, 0x80)] if f.initial is not None else []) + [
            ber.octets(p, 0x81) for p in f.any] + (
            [ber.octets(f.final, 0x82)] if f.final is not None else [])
        return tlv(0xA4, ber.octets(f.attribute.encode()) + ber.sequence(pieces))
    if isinstance(f, Extensible):
        body = b""
        if f.rule is not None:
            body += ber.octets(f.rule.encode(), 0x81)
        if f.attribute is not None:
            body += ber.octets(f.attribute.encode(), 0x82)
        body += ber.octets(f.value, 0x83)
        if f.dn_attributes:
            body += ber.encode_bool(True, 0x84)
        return tlv(0xA9, body)
    tag, _ = _AVA_OPS[type(f)]
    return tlv(tag, ber.octets(f.attribute.encode()) + ber.octets(f.value))


# --- RFC 4515 string form ----------------------------------------------------

_ESCAPED = frozenset(b"*()\\\x00")
_MAX_STRING_DEPTH = FilterLimits().max_depth


def escape_value(value: bytes) -> str:
    """RFC 4515 §3 assertion value, with non-printable octets escaped too."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return "".join(f"\\{b:02x}" for b in value)
    return "".join(f"\\{ord(c):02x}" if _needs_escape(c) else c for c in text)


def _needs_escape(c: str) -> bool:
    return c.isascii() and (ord(c) in _ESCAPED or not c.isprintable())


def format(f: Filter) -> str:
    """The RFC 4515 string form of `f`."""
    if isinstance(f, And | Or):
        operator = "&" if isinstance(f, And) else "|"
        return f"({operator}{''.join(format(p) for p in f.filters)})"
    if isinstance(f, Not):
        return f"(!{format(f.filter)})"
    if isinstance(f, Present):
        return f"({f.attribute}=*)"
    if isinstance(f, Substrings):
        pieces = [escape_value(f.initial or b""), *(escape_value(p) for p in f.any),
                  escape_value(f.final or b"")]
        return f"({f.attribute}={'*'.join(pieces)})"
    if isinstance(f, Extensible):
        head = (f.attribute or "") + (":dn" if f.dn_attributes else "") + (
            f":{f.rule}" if f.rule else "")
        return f"({head}:={escape_value(f.value)})"
    _, op = _AVA_OPS[type(f)]
    return f"({f.attribute}{op}{escape_value(f.value)})"


def parse(text: str) -> Filter:
    """Parse an RFC 4515 filter; outer parentheses may be omitted."""
    text = text.strip()
    if not text.startswith("("):
        text = f"({text})"
    f, pos = _parse(text, 0, 0)
    if pos != len(text):
        raise FilterSyntaxError(f"unexpected text after filter at {pos}: {text[pos:]!r}")
    return f


def _parse(text: str, pos: int, depth: int) -> tuple[Filter, int]:
    if depth > _MAX_STRING_DEPTH:
        raise FilterSyntaxError("filter nested too deeply")
    if pos >= len(text) or text[pos] != "(":
        raise FilterSyntaxError(f"expected '(' at {pos}")
    pos += 1
    if pos >= len(text):
        raise FilterSyntaxError("unterminated filter")
    head = text[pos]
    if head in "&|":
        parts: list[Filter] = []
        pos += 1
        while pos < len(text) and text[pos] == "(":
            part, pos = _parse(text, pos, depth + 1)
            parts.append(part)
        result: Filter = And(tuple(parts)) if head == "&" else Or(tuple(parts))
    elif head == "!":
        inner, pos = _parse(text, pos + 1, depth + 1)
        result = Not(inner)
    else:
        close = _item_end(text, pos)
        result = _item(text[pos:close])
        pos = close
    if pos >= len(text) or text[pos] != ")":
        raise FilterSyntaxError(f"expected ')' at {pos}")
    return result, pos + 1


def _item_end(text: str, pos: int) -> int:
    close = text.find(")", pos)
    if close < 0:
        raise FilterSyntaxError("unterminated filter item")
    if "(" in text[pos:close]:
        raise FilterSyntaxError(f"unescaped '(' in filter item at {pos}")
    return close


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _unescape(value: str) -> bytes:
    out = bytearray()
    raw = value.encode()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x5C:
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not _HEX_DIGITS.issuperset(pair):
                raise FilterSyntaxError(f"bad escape in {value!r}: `\\` needs two hex digits")
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(b)
        i += 1
    return bytes(out)


def _check_attribute(name: str) -> str:
    if not name or not all(c.isascii() and (c.isalnum() or c in "-.;_") for c in name):
        raise FilterSyntaxError(f"bad attribute description {name!r}")
    return name


def _item(item: str) -> Filter:
    for op, cls in (("~=", Approx), (">=", GreaterOrEqual), ("<=", LessOrEqual), (":=", None)):
        at = item.find(op)
        if at > 0 and "=" not in item[:at]:
            value = _unescape(item[at + 2:])
            if cls is None:
                return _extensible(item[:at], value)
            return cls(_check_attribute(item[:at]), value)
    at = item.find("=")
    if at <= 0:
        raise FilterSyntaxError(f"filter item {item!r} has no attribute or operator")
    attribute = _check_attribute(item[:at])
    raw = item[at + 1:]
    if raw == "*":
        return Present(attribute)
    if "*" not in raw:
        return Equality(attribute, _unescape(raw))
    pieces = raw.split("*")
    initial = _unescape(pieces[0]) if pieces[0] else None
    final = _unescape(pieces[-1]) if pieces[-1] else None
    middle = tuple(_unescape(p) for p in pieces[1:-1] if p)
    if initial is None and final is None and not middle:
        raise FilterSyntaxError(f"substrings filter {item!r} has no piece (RFC 4511 §4.5.1.7.2)")
    return Substrings(attribute, initial, middle, final)


def _extensible(head: str, value: bytes) -> Extensible:
    parts = head.split(":")
    attribute = parts[0] or None
    dn_attributes = False
    rule = None
    for part in parts[1:]:
        if part.lower() == "dn" and not dn_attributes and rule is None:
            dn_attributes = True
        elif part and rule is None:
            rule = part
        else:
            raise FilterSyntaxError(f"bad extensible match {head!r}")
    if attribute is None and rule is None:
        raise FilterSyntaxError(f"extensible match {head!r} needs a type or a rule")
    return Extensible(rule, None if attribute is None else _check_attribute(attribute),
                      value, dn_attributes)
