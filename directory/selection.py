"""Which attributes a search returns, and their encoding (RFC 4511 §4.5.1.8).

- No attributes, or "*": every user attribute; "+": every operational
  attribute (RFC 3673); "1.1" alone: none. They combine with named ones.
- A named attribute returns it and its subtypes (RFC 4511 §4.5.1.8).
  Unknown names are ignored. A description with options names only the
  values stored with at least those options (`description;lang-fr`),
  RFC 4512 §2.5.2 and RFC 3866 §3; a language range (`description;lang-en-`)
  the values whose tags it covers (RFC 3866 §3.1).
- Values of the certificate syntaxes are always transferred with the
  `;binary` option (RFC 4523 §2, RFC 4522), whether the client asked for it
  or not, as OpenLDAP does.
- Attributes hidden from the requester are never returned.
- Encoded attributes are kept on the cached entry, so a popular entry is
  encoded once, not once per search. Whether an entry's keys carry options
  is kept per set of keys, which entries of one object class share.
- A selection costs time linear in the request: each distinct description
  is resolved once (a name listed 20,000 times costs what it costs once),
  a type keeps only the distinct option sets asked of it, and deciding
  whether a stored key is wanted costs at most what its own options do.
  Selections are cached per attribute list in a cache bounded in bytes.
- A search's selection is made once, by the dispatcher
  (`Operation.selection`), and every entry it returns is encoded against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from directory.entry import Entry, find, type_key
from directory.protocol.attribute import is_range, options_cover
from directory.protocol.cache import BoundedCache
from directory.protocol.codec import encode_attribute, encode_entry_body
from directory.schema import Schema

BINARY_SYNTAXES = frozenset({
    "1.3.6.1.4.1.1466.115.121.1.8",   # Certificate
    "1.3.6.1.4.1.1466.115.121.1.9",   # Certificate List
    "1.3.6.1.4.1.1466.115.121.1.10",  # Certificate Pair
    "1.3.6.1.4.1.1466.115.121.1.49",  # Supported Algorithm
})


_ANY_OPTIONS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Selection:
    all_user: bool
    all_operational: bool
    names: frozenset[str]  # type keys named explicitly, with their subtypes
    # per type key in `names`: the option sets a stored key must include for
    # one of the requests to name it (the empty set: any key of the type)
    options: Mapping[str, frozenset[frozenset[str]]]
    ranged: bool = False  # some option set holds a language range
    # the types in `names` some request names without options: all an
    # entry without tagged keys can show
    plain: frozenset[str] = frozenset()

    def wants(self, key: str, base: str) -> bool:
        """Whether an explicitly requested description names `key`."""
        required = self.options.get(base)
        if required is None:
            return False
        if _ANY_OPTIONS in required:
            return True
        have = key.split(";")[1:]
        if self.ranged:
            return any(options_cover(r, have) for r in required)
        if 2 ** len(have) < len(required):
            return any(frozenset(subset) in required
                       for size in range(1, len(have) + 1)
                       for subset in combinations(have, size))
        stored = frozenset(have)
        return any(r <= stored for r in required)


# What a cached selection costs per requested name, beyond its text.
_COST_PER_NAME = 200
_SELECTIONS: BoundedCache[tuple[Schema, tuple[str, ...]], Selection] = BoundedCache(
    4 * 1024 * 1024)


def select(schema: Schema, attributes: tuple[str, ...]) -> Selection:
    key = (schema, attributes)
    selection = _SELECTIONS.get(key)
    if selection is None:
        selection = _select(schema, attributes)
        _SELECTIONS.put(key, selection,
                        sum(len(a) for a in attributes) + _COST_PER_NAME * (len(attributes) + 1))
    return selection


def _select(schema: Schema, attributes: tuple[str, ...]) -> Selection:
    if not attributes:
        return Selection(True, False, frozenset(), {})
    options: dict[str, set[frozenset[str]]] = {}
    for text in dict.fromkeys(attributes):
        resolved = find(schema, text)
        if resolved is not None:
            wanted = frozenset(resolved.options)
            for at in schema.subtypes(resolved.type):
                options.setdefault(at.key, set()).add(wanted)
    minimal = {key: frozenset({_ANY_OPTIONS}) if _ANY_OPTIONS in sets else frozenset(sets)
               for key, sets in options.items()}
    ranged = any(is_range(o) for sets in minimal.values() for r in sets for o in r)
    plain = frozenset(key for key, sets in minimal.items() if _ANY_OPTIONS in sets)
    return Selection("*" in attributes, "+" in attributes, frozenset(minimal), minimal, ranged,
                     plain)


@lru_cache(maxsize=4096)
def display_name(schema: Schema, key: str) -> str:
    name, *options = key.split(";")
    at = schema.attribute(name)
    if at.syntax in BINARY_SYNTAXES:
        options.append("binary")
    return ";".join((at.name, *options))


@lru_cache(maxsize=4096)
def _operational(schema: Schema, key: str) -> bool:
    return schema.attribute(key).operational


def _encoded(schema: Schema, entry: Entry, key: str, types_only: bool) -> bytes:
    memo = ("enc", key, types_only)
    data = entry.memo.get(memo)
    if data is None:
        values = () if types_only else entry.attributes[key]
        data = encode_attribute(display_name(schema, key), values)
        entry.memo[memo] = data
    return data


# Entries of one object class mostly hold the same keys: whether some key has
# options is kept per set of keys, in a cache bounded in bytes.
_KEYS_COST = 200
_WITH_OPTIONS: BoundedCache[tuple[str, ...], bool] = BoundedCache(1024 * 1024)


def _has_options(entry: Entry) -> bool:
    keys = tuple(entry.attributes)
    found = _WITH_OPTIONS.get(keys)
    if found is None:
        found = any(";" in key for key in keys)
        _WITH_OPTIONS.put(keys, found, _KEYS_COST * len(keys))
    return found


def encode_entry(schema: Schema, entry: Entry, selection: Selection, types_only: bool,
                 hidden: frozenset[str], computed: dict[str, tuple[bytes, ...]]) -> bytes:
    """The body of a SearchResultEntry for `entry`. `computed` holds the
    operational attributes computed for it (when operational ones are wanted)."""
    parts = []
    attributes = entry.attributes
    if selection.all_user or selection.all_operational or _has_options(entry):
        for key in attributes:
            base = type_key(key)
            if base in hidden:
                continue
            operational = _operational(schema, base)
            wanted = (selection.all_operational if operational else selection.all_user)
            if wanted or selection.wants(key, base):
                parts.append(_encoded(schema, entry, key, types_only))
    else:
        # The common case (a mail client asking for a few attributes): look
        # the requested ones up instead of walking the whole entry.
        parts.extend(_encoded(schema, entry, key, types_only) for key in selection.plain
                     if key in attributes and key not in hidden)
    for key, values in computed.items():
        if selection.all_operational or key in selection.names:
            parts.append(encode_attribute(display_name(schema, key),
                                          () if types_only else values))
    return encode_entry_body(str(entry.dn), b"".join(parts))


def wants_computed(selection: Selection, computed_keys: tuple[str, ...]) -> bool:
    return selection.all_operational or any(k in selection.names for k in computed_keys)
