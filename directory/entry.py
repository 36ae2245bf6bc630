"""Entries as the directory holds them, and attribute descriptions resolved
against the schema (RFC 4512 §2.5).

- An entry maps attribute keys to values. A key is the attribute type's
  canonical name plus its tagging options, lower-cased and sorted
  ("cn", "cn;lang-en"); `;binary` is a transfer option (RFC 4522 §2) and is
  never part of a key.
- A description names its type and every subtype of it, with any options
  (RFC 4512 §2.5.1, §2.5.2): `name` covers `cn;lang-en`.
- The options certdir recognises are language tags (RFC 3866) and
  `binary`; any other is refused as undefinedAttributeType, which
  RFC 4512 §2.5 allows and OpenLDAP does.
- A language range (`lang-en-`, RFC 3866 §3.1) names values in search
  filters, attribute lists and compare; a value is never stored under
  one (`resolve_stored`: undefinedAttributeType, as slapd answers).
- Entries are stored as a marshal blob behind a format byte: marshal is the
  fastest encoding CPython has (C code, no per-value Python calls), which
  matters when a search misses the entry cache. It holds only str, bytes
  and tuples, whose marshal form has not changed since format 4 (3.4).
- Attribute keys and the leaf's attribute names are stored interned, so
  marshal interns them again as it loads: every entry in memory shares
  one string per key (a sixth of a decoded entry's memory otherwise).
"""

from __future__ import annotations

import marshal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from directory.protocol.attribute import (
    AttributeDescription,
    AttributeDescriptionError,
    is_range,
    options_cover,
)
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import AVA, DN, RDN
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import AttributeType, Schema


@dataclass(frozen=True, slots=True)
class Resolved:
    """An attribute description resolved against the schema."""

    type: AttributeType
    key: str
    options: tuple[str, ...]
    binary: bool
    text: str


# Descriptions up to this long are cached (a longer one is a client's choice).
MAX_CACHED_DESCRIPTION = 128


def resolve(schema: Schema, text: str) -> Resolved:
    """Resolve `text`; raises LDAPError(undefinedAttributeType) when unknown."""
    if len(text) > MAX_CACHED_DESCRIPTION:
        return _resolve_text(schema, text)
    return _resolve(schema, text)


def _resolve_text(schema: Schema, text: str) -> Resolved:
    try:
        desc = AttributeDescription.parse(text)
    except AttributeDescriptionError as e:
        raise LDAPError(ResultCode.UNDEFINED_ATTRIBUTE_TYPE, f"{text}: {e}") from None
    at = schema.attribute(desc.type)
    options = desc.tagging_options
    unknown = [o for o in options if not o.startswith("lang-")]
    if unknown:
        raise LDAPError(ResultCode.UNDEFINED_ATTRIBUTE_TYPE,
                        f"{text}: unrecognized attribute option {unknown[0]}")
    key = ";".join((at.key, *options))
    return Resolved(at, key, options, desc.binary, text)


_resolve = lru_cache(maxsize=4096)(_resolve_text)


def resolve_stored(schema: Schema, text: str) -> Resolved:
    """Like `resolve`, for a description values are stored under."""
    resolved = resolve(schema, text)
    if any(is_range(o) for o in resolved.options):
        raise LDAPError(ResultCode.UNDEFINED_ATTRIBUTE_TYPE,
                        f"{text}: a language range names values, it cannot hold them")
    return resolved


def find(schema: Schema, text: str) -> Resolved | None:
    """Like `resolve`, but None for an unknown or malformed description (a
    filter on it evaluates to Undefined, RFC 4511 §4.5.1.7)."""
    try:
        return resolve(schema, text)
    except LDAPError:
        return None


def type_key(key: str) -> str:
    return key.split(";", 1)[0]


@dataclass(init=False, slots=True)
class Entry:
    dn: Final[DN]
    attributes: Final[Mapping[str, tuple[bytes, ...]]]
    id: Final[int]
    memo: dict[Any, Any] = field(init=False, compare=False, repr=False)

    def __init__(self, dn: DN, attributes: Mapping[str, tuple[bytes, ...]], id: int = 0) -> None:
        self.dn = dn
        self.attributes = attributes
        self.id = id
        self.memo = {}

    def get(self, key: str) -> tuple[bytes, ...]:
        return self.attributes.get(key, ())

    def first(self, key: str) -> bytes | None:
        values = self.attributes.get(key)
        return values[0] if values else None

    @property
    def object_classes(self) -> frozenset[str]:
        classes = self.memo.get("oc")
        if classes is None:
            values = self.get("objectclass")
            classes = _CLASSES.get(values)
            if classes is None:
                classes = frozenset(v.decode().lower() for v in values)
                _CLASSES.put(values, classes, _CLASSES_COST * len(values) + len(b"".join(values)))
            self.memo["oc"] = classes
        return classes

    def with_attributes(self, attributes: Mapping[str, tuple[bytes, ...]]) -> Entry:
        return Entry(self.dn, attributes, self.id)

    def moved(self, dn: DN) -> Entry:
        return Entry(dn, self.attributes, self.id)

    def keys_for(self, schema: Schema, resolved: Resolved) -> tuple[str, ...]:
        """The entry's keys that `resolved` names: its type and subtypes, with
        at least the description's options."""
        keys = self.types(schema).get(resolved.type.key, ())
        if not resolved.options or not keys:
            return keys
        if any(is_range(o) for o in resolved.options):
            return tuple(k for k in keys if options_cover(resolved.options, k.split(";")[1:]))
        wanted = set(resolved.options)
        return tuple(k for k in keys if wanted.issubset(k.split(";")[1:]))

    def types(self, schema: Schema) -> Mapping[str, tuple[str, ...]]:
        """The entry's keys under each type they are of, directly or as a
        subtype. Memoised once per entry, and shared by the entries with the
        same keys (in a cache bounded in bytes): what it holds is the
        entries' own data, whatever descriptions requests name."""
        index: Mapping[str, tuple[str, ...]] | None = self.memo.get("types")
        if index is None:
            keys = tuple(self.attributes)
            index = _TYPES.get((schema, keys))
            if index is None:
                index = _types_of(schema, keys)
                _TYPES.put((schema, keys), index, _TYPES_COST * (len(keys) + len(index)))
            self.memo["types"] = index
        return index

    def values_for(self, schema: Schema, resolved: Resolved) -> Iterable[bytes]:
        for key in self.keys_for(schema, resolved):
            yield from self.attributes[key]


def _types_of(schema: Schema, keys: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    for key in keys:
        at = schema.find_attribute(type_key(key))
        while at is not None:
            index[at.key] = (*index.get(at.key, ()), key)
            at = None if at.sup is None else schema.find_attribute(at.sup)
    return index


# Entries of one object class mostly have the same keys and objectClass
# values: a directory holds few of either, each shared by many entries
# (they took 2.5 KB of each cached inetOrgPerson).
_CLASSES_COST = 300
_CLASSES: BoundedCache[tuple[bytes, ...], frozenset[str]] = BoundedCache(1024 * 1024)
_TYPES_COST = 200
_TYPES: BoundedCache[tuple[Schema, tuple[str, ...]], Mapping[str, tuple[str, ...]]] = (
    BoundedCache(1024 * 1024))

_FORMAT = b"\x01"


def serialize(entry: Entry) -> bytes:
    """The stored form: the leaf RDN's parsed AVAs and the attributes. The
    row's DN text is the leaf RDN's text, a comma and the parent's, so
    loading an entry never parses or normalises its leaf RDN again and
    takes the parent from the DN parse cache."""
    return pack(stored_leaf(entry.dn), entry.attributes)


StoredLeaf = tuple[tuple[str, str, str, str], ...]


def stored_leaf(dn: DN) -> StoredLeaf:
    return tuple((a.attribute, a.value, a.key, a.norm) for a in dn.rdn.avas)


def pack(leaf: StoredLeaf, attributes: Mapping[str, tuple[bytes, ...]]) -> bytes:
    names = tuple([(sys.intern(name), value, sys.intern(key), norm)
                   for name, value, key, norm in leaf])
    items = tuple([(sys.intern(key), values) for key, values in attributes.items()])
    return _FORMAT + marshal.dumps((names, items), 4)


def deserialize(schema: Schema, dn_text: str, blob: bytes, entry_id: int) -> Entry:
    if blob[:1] != _FORMAT:
        raise ValueError(f"unknown entry format {blob[:1]!r}")
    leaf, items = marshal.loads(blob[1:])
    rdn = RDN.of(tuple([AVA(*ava) for ava in leaf]))
    if not dn_text.startswith(rdn.text):
        raise ValueError(f"stored DN {dn_text!r} does not start with its RDN {rdn.text!r}")
    parent = DN.shared(dn_text[len(rdn.text) + 1:], schema)
    return Entry(DN((rdn, *parent.rdns), parent), dict(items), entry_id)
