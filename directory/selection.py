"""Which attributes a search returns, and their encoding (RFC 4511 §4.5.1.8).

- No attributes, or "*": every user attribute; "+": every operational
  attribute (RFC 3673); "1.1" alone: none. They combine with named ones.
- A named attribute returns it and its subtypes (RFC 4511 §4.5.1.8).
  Unknown names are ignored. A description with options names only the
  values stored with at least those options (`description;lang-fr`),
  RFC 4512 §2.5.2 and RFC 3866 §3.
- Values of the certificate syntaxes are always transferred with the
  `;binary` option (RFC 4523 §2, RFC 4522), whether the client asked for it
  or not, as OpenLDAP does.
- Attributes hidden from the requester are never returned.
- Encoded attributes are kept on the cached entry, so a popular entry is
  encoded once, not once per search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from directory.entry import Entry, find, type_key
from directory.protocol.codec import encode_attribute, encode_entry_body
from directory.schema import Schema

BINARY_SYNTAXES = frozenset({
    "1.3.6.1.4.1.1466.115.121.1.8",   # Certificate
    "1.3.6.1.4.1.1466.115.121.1.9",   # Certificate List
    "1.3.6.1.4.1.1466.115.121.1.10",  # Certificate Pair
    "1.3.6.1.4.1.1466.115.121.1.49",  # Supported Algorithm
})


@dataclass(frozen=True, slots=True)
class Selection:
    all_user: bool
    all_operational: bool
    names: frozenset[str]  # type keys named explicitly, with their subtypes
    # per type key in `names`: the option sets a stored key must include for
    # one of the requests to name it (an empty set: any key of the type)
    options: Mapping[str, tuple[frozenset[str], ...]]

    def wants(self, key: str, base: str) -> bool:
        """Whether an explicitly requested description names `key`."""
        required = self.options.get(base)
        if required is None:
            return False
        have = frozenset(key.split(";")[1:])
        return any(r <= have for r in required)


@lru_cache(maxsize=4096)
def select(schema: Schema, attributes: tuple[str, ...]) -> Selection:
    if not attributes:
        return Selection(True, False, frozenset(), {})
    options: dict[str, tuple[frozenset[str], ...]] = {}
    for text in attributes:
        resolved = find(schema, text)
        if resolved is not None:
            for at in schema.subtypes(resolved.type):
                options[at.key] = (*options.get(at.key, ()), frozenset(resolved.options))
    return Selection("*" in attributes, "+" in attributes, frozenset(options), options)


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


def _has_options(entry: Entry) -> bool:
    found = entry.memo.get("options")
    if found is None:
        found = entry.memo["options"] = any(";" in key for key in entry.attributes)
    return bool(found)


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
        parts.extend(_encoded(schema, entry, key, types_only) for key in selection.names
                     if key in attributes and key not in hidden)
    for key, values in computed.items():
        if selection.all_operational or key in selection.names:
            parts.append(encode_attribute(display_name(schema, key),
                                          () if types_only else values))
    return encode_entry_body(str(entry.dn), b"".join(parts))


def wants_computed(selection: Selection, computed_keys: tuple[str, ...]) -> bool:
    return selection.all_operational or any(k in selection.names for k in computed_keys)
