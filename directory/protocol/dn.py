"""Distinguished names (RFC 4514 string form, RFC 4512 §2.3 naming).

- A DN is a sequence of RDNs, leaf first; an RDN is a set of one or more
  attribute type and value assertions joined by `+` (multi-valued RDN).
- Attribute types are names or dotted OIDs; values are strings with the
  escapes of RFC 4514 §2.4: a backslash before one of `"+,;<>\\ #=` or two
  hex digits (one UTF-8 octet), or `#` followed by the hex of a BER value.
- Spaces around `,`, `+` and `=` are insignificant (RFC 4514 §3 lets a
  parser accept them, and ldap-utils users type them).
- Equality of DNs follows the schema: each type resolves to its canonical
  name, each value is normalised by the type's equality rule, and the AVAs
  of an RDN are compared as a set (the normalised form sorts them).
- Output escapes `,+"\\<>;`, NUL, a leading `#` or space and a trailing
  space, so a printed DN parses back to the same DN.
- A client's DN is bounded by `DNLimits`: more bytes than `max_bytes`
  (slapd refuses DNs over 8192 bytes, its SLAP_LDAPDN_MAXLEN, with
  invalidDNSyntax) or more RDNs than `max_rdns` is invalidDNSyntax, found
  before any work beyond the length check.
- Parsing is one loop over the RDNs, never a recursion, and costs time
  linear in the DN. DNs read back from the database, and the parents of
  the entries a bulk load adds (`DN.shared`), are kept in a cache bounded
  in bytes, so the entries below one parent share its DN and its RDN
  objects; a client's DN is looked up there (its parent usually is, and
  is used if the DN stays within `max_rdns`), never added: short ones go
  to a second, smaller cache of their own, long ones are not kept at all.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

from directory.protocol.cache import BoundedCache
from directory.protocol.results import LDAPError, ResultCode


class Normalizer(Hashable, Protocol):
    """What DN parsing needs from a schema."""

    def attribute_name(self, name: str) -> str:
        """The type's key (canonical lower-case name); LDAPError when unknown."""
        ...

    def normalize_value(self, key: str, value: str) -> str:
        """The value as the type's equality rule compares it."""
        ...


class _Plain:
    """Schema-less normalisation: case-folded names and values."""

    def attribute_name(self, name: str) -> str:
        return name.lower()

    def normalize_value(self, key: str, value: str) -> str:
        return " ".join(value.lower().split())

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Plain)


PLAIN: Normalizer = _Plain()

_SPECIAL = frozenset(',+"\\<>;=# ')
_ESCAPE_ALWAYS = frozenset(',+"\\<>;')
_HEX = frozenset("0123456789abcdefABCDEF")
_UNIVERSAL_STRINGS = frozenset({0x04, 0x0C, 0x13, 0x14, 0x16, 0x1A, 0x1C, 0x1E})


_NEEDS_ESCAPE = re.compile(r'[,+"\\<>;\x00]|^[ #]| $')


def escape(value: str) -> str:
    """RFC 4514 §2.4 string form of an attribute value."""
    if not _NEEDS_ESCAPE.search(value):
        return value
    out = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in _ESCAPE_ALWAYS or (i == 0 and ch in "# ") or (i == last and ch == " "):
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(init=False, unsafe_hash=True, slots=True)
class AVA:
    """One attribute type and value assertion: as written, and normalised."""

    attribute: Final[str]
    value: Final[str]
    key: Final[str]
    norm: Final[str]

    def __init__(self, attribute: str, value: str, key: str, norm: str) -> None:
        self.attribute = attribute
        self.value = value
        self.key = key
        self.norm = norm

    def __str__(self) -> str:
        return f"{self.attribute}={escape(self.value)}"

    @property
    def normalized(self) -> str:
        return f"{self.key}={escape(self.norm)}"


@dataclass(init=False, slots=True)
class RDN:
    avas: Final[tuple[AVA, ...]]
    normalized: Final[str]
    text: Final[str]

    def __init__(self, avas: tuple[AVA, ...], normalized: str, text: str) -> None:
        self.avas = avas
        self.normalized = normalized
        self.text = text

    @classmethod
    def of(cls, avas: tuple[AVA, ...]) -> RDN:
        if len(avas) == 1:  # nearly every RDN: nothing to sort or join
            ava = avas[0]
            return cls(avas, ava.normalized, str(ava))
        return cls(avas, "+".join(sorted([a.normalized for a in avas])),
                   "+".join([str(a) for a in avas]))

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RDN) and other.normalized == self.normalized

    def __hash__(self) -> int:
        return hash(self.normalized)

    def encode(self) -> bytes:
        return str(self).encode()


@dataclass(frozen=True, slots=True)
class DNLimits:
    max_bytes: int = 8192
    max_rdns: int = 256


# DNs read back from the database passed the limits when they were written.
STORED = DNLimits(sys.maxsize, sys.maxsize)


class DN:
    """An immutable DN; `rdns[0]` is the leaf. Compares by normalised form."""

    __slots__ = ("_parent", "_text", "normalized", "rdns")
    ROOT: ClassVar[DN]

    def __init__(self, rdns: tuple[RDN, ...], parent: DN | None = None) -> None:
        self.rdns = rdns
        self.normalized = ",".join([r.normalized for r in rdns])
        self._text = ",".join([r.text for r in rdns])
        self._parent = parent

    @staticmethod
    def parse(text: str, normalizer: Normalizer = PLAIN, limits: DNLimits = DNLimits()) -> DN:
        """Parse RFC 4514 `text`; LDAPError(invalidDNSyntax) when malformed or
        beyond `limits`."""
        key = (text, normalizer)
        dn = _SHARED.get(key)
        if dn is not None:
            return dn
        dn = _RECENT.get(key)
        if dn is not None and len(dn.rdns) <= limits.max_rdns and len(text) <= limits.max_bytes:
            return dn
        dn = _parse(text, normalizer, limits)
        if len(text) <= MAX_RECENT_TEXT:
            _RECENT.put(key, dn, _COST_PER_CHAR * len(text) + _COST_PER_RDN * len(dn.rdns))
        return dn

    @staticmethod
    def shared(text: str, normalizer: Normalizer) -> DN:
        """Parse a DN read back from the database, and keep it for the next
        entry below the same parent."""
        key = (text, normalizer)
        dn = _SHARED.get(key)
        if dn is None:
            dn = _parse(text, normalizer, STORED)
            _SHARED.put(key, dn, _COST_PER_CHAR * len(text) + _COST_PER_RDN * len(dn.rdns))
        return dn

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"DN({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DN) and other.normalized == self.normalized

    def __hash__(self) -> int:
        return hash(self.normalized)

    def __len__(self) -> int:
        return len(self.rdns)

    def __bool__(self) -> bool:
        return bool(self.rdns)

    def __iter__(self) -> Iterator[RDN]:
        return iter(self.rdns)

    def encode(self) -> bytes:
        return self._text.encode()

    @property
    def rdn(self) -> RDN:
        if not self.rdns:
            raise LDAPError(ResultCode.INVALID_DN_SYNTAX, "the root DSE has no RDN")
        return self.rdns[0]

    @property
    def parent(self) -> DN:
        # Not kept when computed: walking up a deep DN would keep every
        # ancestor's strings alive at once.
        return self._parent if self._parent is not None else DN(self.rdns[1:])

    def child(self, rdn: RDN) -> DN:
        return DN((rdn, *self.rdns), self)

    def is_descendant_of(self, other: DN, strict: bool = False) -> bool:
        """Whether `other` is this DN or (with `strict`, only) above it."""
        extra = len(self.rdns) - len(other.rdns)
        if extra < 0 or (strict and extra == 0):
            return False
        # Parsed DNs share their parents' RDN objects, so the tuple comparison
        # mostly succeeds on identity, in C.
        return self.rdns[extra:] == other.rdns

    def relative_to(self, old: DN, new: DN) -> DN:
        """This DN with its ancestor `old` replaced by `new`."""
        return DN(self.rdns[: len(self.rdns) - len(old.rdns)] + new.rdns)


DN.ROOT = DN(())


def _fail(text: str, why: str) -> LDAPError:
    shown = text if len(text) <= 128 else text[:128] + "..."
    return LDAPError(ResultCode.INVALID_DN_SYNTAX, f"invalid DN {shown!r}: {why}")


# What a kept DN costs: its text three times over (the key, the normalised
# and the printed form) and its RDN and AVA objects.
_COST_PER_CHAR = 4
_COST_PER_RDN = 400
_SHARED: BoundedCache[tuple[str, Normalizer], DN] = BoundedCache(16 * 1024 * 1024)
_SHARED_TAILS = 8
# Clients' short DNs, apart: however many a client sends, they cannot push
# the stored ones out, and a long one is never kept.
MAX_RECENT_TEXT = 256
_RECENT: BoundedCache[tuple[str, Normalizer], DN] = BoundedCache(4 * 1024 * 1024)


def _parse(text: str, normalizer: Normalizer, limits: DNLimits) -> DN:
    size = len(text)
    if size > limits.max_bytes or (
            size * 4 > limits.max_bytes
            and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes):
        raise _fail(text, f"longer than {limits.max_bytes} bytes")
    if not text.strip():
        return DN.ROOT
    rdn, pos = _rdn(text, 0, normalizer)
    if pos is None:
        return DN((rdn,))
    parent = _SHARED.get((text[pos:], normalizer))
    if parent is not None and len(parent.rdns) < limits.max_rdns:
        return DN((rdn, *parent.rdns), parent)
    rdns, starts = [rdn], [pos]
    while pos is not None:
        if len(rdns) == limits.max_rdns:
            raise _fail(text, f"more than {limits.max_rdns} RDNs")
        rdn, pos = _rdn(text, pos, normalizer)
        rdns.append(rdn)
        if pos is not None:
            starts.append(pos)
    # Share the RDNs of a kept ancestor (the suffix, usually): looked for
    # among the last few, so a deep DN costs no more than a shallow one.
    for i in range(max(1, len(starts) - _SHARED_TAILS), len(starts)):
        kept = _SHARED.get((text[starts[i]:], normalizer))
        if kept is not None:
            return DN((*rdns[:i + 1], *kept.rdns))
    return DN(tuple(rdns))


def _rdn(text: str, pos: int, normalizer: Normalizer) -> tuple[RDN, int | None]:
    """The RDN at `pos`, and where the next one starts (None at the end)."""
    avas: list[AVA] = []
    end = len(text)
    while True:
        attribute, pos = _attribute_type(text, pos)
        value, pos = _value(text, pos)
        try:
            key = normalizer.attribute_name(attribute)
        except LDAPError as e:
            raise _fail(text, f"unknown attribute type {attribute}") from e
        avas.append(AVA(attribute, value, key, normalizer.normalize_value(key, value)))
        while pos < end and text[pos] == " ":
            pos += 1
        if pos == end:
            return RDN.of(tuple(avas)), None
        separator = text[pos]
        pos += 1
        if separator in ",;":
            return RDN.of(tuple(avas)), pos
        if separator != "+":
            raise _fail(text, f"unexpected {separator!r} at {pos}")


_DESCRIPTOR = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")
_NUMERIC_OID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\Z")


def _attribute_type(text: str, pos: int) -> tuple[str, int]:
    equals = text.find("=", pos)
    if equals < 0:
        raise _fail(text, "attribute type without '='")
    name = text[pos:equals].strip()
    if name[:4].lower() == "oid." and _NUMERIC_OID.match(name, 4):
        name = name[4:]
    elif not (_DESCRIPTOR.match(name) or _NUMERIC_OID.match(name)):
        raise _fail(text, f"bad attribute type {name!r}")
    pos = equals + 1
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return name, pos


# A value without escapes or quotes: the common case, sliced in one step.
_PLAIN = re.compile(r'[^,+;\\"<>\x00]*')


def _value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == "#":
        return _hex_value(text, pos + 1)
    if pos < len(text) and text[pos] == '"':
        return _quoted_value(text, pos + 1)
    plain = _PLAIN.match(text, pos)
    assert plain is not None
    if plain.end() == len(text) or text[plain.end()] in ",+;":
        return text[pos:plain.end()].rstrip(" "), plain.end()
    out = bytearray()
    trailing = 0  # unescaped trailing spaces, not part of the value
    end = len(text)
    while pos < end:
        ch = text[pos]
        if ch in ",+;":
            break
        if ch == "\\":
            pos, escaped = _escape(text, pos + 1)
            out += escaped
            trailing = 0
            continue
        if ch in '"<>\x00':
            raise _fail(text, f"{ch!r} must be escaped at {pos}")
        out += ch.encode()
        trailing = trailing + 1 if ch == " " else 0
        pos += 1
    if trailing:
        del out[-trailing:]
    return _utf8(text, out), pos


def _utf8(text: str, value: bytearray) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise _fail(text, "value is not UTF-8") from None


def _escape(text: str, pos: int) -> tuple[int, bytes]:
    if pos < len(text) and text[pos] in _SPECIAL:
        return pos + 1, text[pos].encode()
    pair = text[pos:pos + 2]
    if len(pair) == 2 and all(c in _HEX for c in pair):
        return pos + 2, bytes.fromhex(pair)
    raise _fail(text, f"bad escape at {pos}")


def _quoted_value(text: str, pos: int) -> tuple[str, int]:
    out = bytearray()
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return _utf8(text, out), pos + 1
        if ch == "\\":
            pos, escaped = _escape(text, pos + 1)
            out += escaped
            continue
        out += ch.encode()
        pos += 1
    raise _fail(text, "unterminated quoted value")


def _hex_value(text: str, pos: int) -> tuple[str, int]:
    start = pos
    while pos < len(text) and text[pos] in _HEX:
        pos += 1
    digits = text[start:pos]
    if not digits or len(digits) % 2:
        raise _fail(text, "bad #hex value")
    data = bytes.fromhex(digits)
    # A BER string type is read as its contents; any other type keeps its
    # hex form so it still compares as written.
    if len(data) >= 2 and data[0] in _UNIVERSAL_STRINGS and data[1] == len(data) - 2:
        try:
            return data[2:].decode(), pos
        except UnicodeDecodeError:
            pass
    return "#" + digits.lower(), pos
