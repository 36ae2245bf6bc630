"""The index rows of an entry, the same in every backend (DESIGN.md, "Storage").

- `storage.indexes` gives each attribute type its kinds of index, as
  slapd's `index cn eq,sub`. objectClass always has `eq`, and so has
  entryCSN: its keys (the CSN's octets) sort in time order per server id,
  so the syncrepl provider finds what changed after a cookie by a range
  of them (`After`) instead of looking at every entry.
- `eq` rows are (type, the equality rule's key of a value; the value itself
  when the type has no equality rule). They serve equality and presence,
  and initial substrings as a key prefix where the equality and substrings
  rules normalise alike (`search_plan`).
- `sub` rows are (`<type>:sub`, gram) for every `GRAM`-byte piece of the
  substrings rule's key of a value (the equality rule's when the type has
  none: the rule the predicates match substrings with). A colon never
  occurs in an attribute description (RFC 4512 §2.5), so the derived name
  cannot collide with a real one. A type with neither rule cannot have a
  `sub` index.
- Values are indexed under their type without options (cn;lang-en under
  cn), as (cn=x) compares cn;lang-en values too. A value the rule refuses
  has no rows; the predicates skip it as well.
- Soundness: a substring assertion matches a value only if each of its
  pieces, normalised by the same rule, is a piece of the value's key, so
  every gram of a piece is among the value's grams and gram lookups give a
  superset of the matches. A piece shorter than `GRAM` gives no gram.
- `probes` picks at most `MAX_PROBES` grams of an assertion, spread so they
  overlap little: an assertion as long as the request allows costs a
  bounded number of lookups.
- `SCAN_SHARE`: an index query that selects more than one entry in
  `SCAN_SHARE` loses to a scan; backends count estimates up to that bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from directory.backend.postings import Gathering
from directory.entry import type_key
from directory.matching import InvalidValue, Keyer
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import AttributeType, Schema

EQ = "eq"
SUB = "sub"
KINDS = (EQ, SUB)
GRAM = 3
MAX_PROBES = 8
SCAN_SHARE = 4
# The attribute types indexed whatever the configuration says.
ALWAYS = ("objectclass", "entrycsn")


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One attribute type's kinds of index, by the name config gives it."""
    attribute: str
    kinds: frozenset[str] = frozenset({EQ})

    def __post_init__(self) -> None:
        unknown = sorted(self.kinds - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"{self.attribute}: index kinds must be some of "
                             f"{', '.join(KINDS)}, not {unknown or 'none'}")


def spec_of(item: str | IndexSpec) -> IndexSpec:
    """A bare attribute name is an equality index."""
    return item if isinstance(item, IndexSpec) else IndexSpec(item)


def substring_name(key: str) -> str:
    """The attribute name under which the type `key` keeps its grams."""
    return f"{key}:{SUB}"


def is_substring_name(name: str) -> bool:
    """Whether `name` is the name of a type's grams."""
    return name.endswith(f":{SUB}")


def substring_keyer(schema: Schema, at: AttributeType) -> Keyer | None:
    """How values and assertion pieces of `at` are normalised for substrings."""
    rule = schema.substrings(at) or schema.equality(at)
    return None if rule is None else rule.value_key


def probes(pieces: Iterable[bytes]) -> tuple[bytes, ...]:
    """Grams of normalised assertion pieces to look up: per piece, those
    starting every `GRAM` bytes and the last, at most `MAX_PROBES` in all."""
    chosen: dict[bytes, None] = {}
    for piece in pieces:
        if len(piece) < GRAM:
            continue
        starts = [*range(0, len(piece) - GRAM + 1, GRAM), len(piece) - GRAM]
        for start in starts:
            chosen[piece[start:start + GRAM]] = None
    return tuple(chosen)[:MAX_PROBES]


class IndexKeys:
    """The rows `indexes` give an entry's attributes."""

    def __init__(self, schema: Schema, indexes: Iterable[str | IndexSpec]) -> None:
        kinds: dict[str, set[str]] = {key: {EQ} for key in ALWAYS}
        types = {key: schema.attribute(key) for key in ALWAYS}
        for item in indexes:
            spec = spec_of(item)
            at = schema.attribute(spec.attribute)
            types[at.key] = at
            kinds.setdefault(at.key, set()).update(spec.kinds)
        # type key -> the equality keyer (None: the value is its own key)
        self._equality: dict[str, Keyer | None] = {}
        # type key -> (derived name, substrings keyer)
        self._substrings: dict[str, tuple[str, Keyer]] = {}
        for key, wanted in kinds.items():
            if EQ in wanted:
                rule = schema.equality(types[key])
                self._equality[key] = None if rule is None else rule.value_key
            if SUB in wanted:
                keyer = substring_keyer(schema, types[key])
                if keyer is None:
                    raise LDAPError(ResultCode.INAPPROPRIATE_MATCHING,
                                    f"{types[key].name}: no matching rule for a sub index")
                self._substrings[key] = (substring_name(key), keyer)
        self.names = frozenset(self._equality) | frozenset(
            name for name, _ in self._substrings.values())

    def rows(self, attributes: Mapping[str, tuple[bytes, ...]]) -> set[tuple[str, bytes]]:
        return {(name, key) for name, keys in self._keys(attributes) for key in keys}

    def gather(self, attributes: Mapping[str, tuple[bytes, ...]], place: int,
               into: Gathering) -> None:
        """Add the rows of the entry at `place` of a batch to `into`."""
        for name, keys in self._keys(attributes):
            into.add(place, name, keys)

    def _keys(self, attributes: Mapping[str, tuple[bytes, ...]]
              ) -> Iterator[tuple[str, list[bytes]]]:
        """The index's name and keys of each indexed attribute (repeats left
        in). Values are normalised once where both kinds use one rule."""
        equality, substrings = self._equality, self._substrings
        for description, values in attributes.items():
            key = description if ";" not in description else type_key(description)
            keys: list[bytes] | None = None
            if key in equality:
                keyer = equality[key]
                keys = list(values) if keyer is None else _normalised(keyer, values)
                yield key, keys
            if key in substrings:
                name, sub_keyer = substrings[key]
                if keys is None or equality[key] is not sub_keyer:
                    keys = _normalised(sub_keyer, values)
                grams: list[bytes] = []
                for normalised in keys:
                    grams.extend([normalised[i:i + GRAM]
                                  for i in range(len(normalised) - GRAM + 1)])
                yield name, grams


def _normalised(keyer: Keyer, values: Iterable[bytes]) -> list[bytes]:
    """The keys of the values the rule takes (a value it refuses has none)."""
    keys = []
    for value in values:
        try:
            keys.append(keyer(value))
        except InvalidValue:
            continue
    return keys
