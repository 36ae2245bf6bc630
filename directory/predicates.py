"""Search filters compiled into predicates over entries (RFC 4511 §4.5.1.7).

- Evaluation is three-valued: True, False, or None for Undefined. AND is
  False if any part is False, else Undefined if any part is, else True; OR
  is the dual; NOT of Undefined is Undefined (RFC 4511 §4.5.1.7).
- An unknown attribute, an attribute without the needed matching rule, or
  an assertion value that does not fit the rule's syntax gives Undefined.
- A description covers its subtypes and options: (name=x) matches cn and
  sn values, (cn=x) matches cn;lang-en values (RFC 4512 §2.5).
- Equality matches use the equality rule; approximate matches of string
  attributes compare words by sound as slapd does (`directory.approx`),
  of any other attribute use the equality rule (RFC 4511 §4.5.1.7.6);
  ordering uses the ordering rule; substrings use the substrings rule's
  normalisation.
- Extensible match (RFC 4511 §4.5.1.7.7): the named rule, or the
  attribute's equality rule; without a type, every attribute the rule
  applies to (its matchingRuleUse: the types whose own rule it is or whose
  syntax its assertion syntax covers, worked out once per rule); with
  dnAttributes, the entry's DN values of those types too.
- Attributes hidden from the requester (those it has no search access to
  on the entry) evaluate to Undefined whether or not the entry holds them,
  so a filter cannot probe them; a hidden subtype of a type the filter
  names (cn under name) counts as absent. `tested` names the attribute
  types a filter looks at on an entry, so the caller knows which to ask
  the access policy about.
- What one assertion costs a candidate entry is linear in the entry: the
  entry's values are keyed by a rule once and memoised on the entry, under
  names taken from the schema (a type, a rule, the hidden set), never from
  the request's text, so an entry's memo is bounded by its own size times
  the rules in use, whatever filters clients send.
- Compiled predicates are cached per (filter, hidden set) for small
  filters only (`ResolvedFilter.small`: up to `MAX_CACHED_FILTER` items of
  up to `MAX_CACHED_VALUE` bytes each), so the cache holds a bounded number
  of bounded filters.
- Predicates are compiled from the filter as the dispatcher resolved it
  (`directory.resolved_filter`): no description is resolved here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from directory import approx
from directory.entry import Entry, Resolved, type_key
from directory.matching import InvalidValue, MatchingRule, covers
from directory.protocol.cache import BoundedCache
from directory.protocol.filter import (
    And,
    Approx,
    Equality,
    Extensible,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)
from directory.resolved_filter import ResolvedFilter
from directory.schema import Schema

Predicate = Callable[[Entry], bool | None]


def _undefined(entry: Entry) -> bool | None:
    return None


def _true(entry: Entry) -> bool | None:
    return True


def compile_filter(schema: Schema, f: ResolvedFilter,
                   hidden: frozenset[str] = frozenset()) -> Predicate:
    return _compile(schema, f, hidden)


def _compile(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    if f.small:
        return _cached(schema, f, hidden)
    return COMPILERS[type(f.filter)](schema, f, hidden)


@lru_cache(maxsize=8192)
def _cached(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    return COMPILERS[type(f.filter)](schema, f, hidden)


def _and(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    parts = tuple(_compile(schema, c, hidden) for c in f.parts)

    def test(entry: Entry) -> bool | None:
        result: bool | None = True
        for part in parts:
            value = part(entry)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    return test


def _or(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    parts = tuple(_compile(schema, c, hidden) for c in f.parts)

    def test(entry: Entry) -> bool | None:
        result: bool | None = False
        for part in parts:
            value = part(entry)
            if value is True:
                return True
            if value is None:
                result = None
        return result

    return test


def _not(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    inner = _compile(schema, f.parts[0], hidden)

    def test(entry: Entry) -> bool | None:
        value = inner(entry)
        return None if value is None else not value

    return test


def _visible(f: ResolvedFilter, hidden: frozenset[str]) -> Resolved | None:
    resolved = f.attribute
    if resolved is None or resolved.type.key in hidden:
        return None
    return resolved


_NO_KEYS: frozenset[bytes] = frozenset()


def _rule_keys(rule: MatchingRule, values: Iterable[bytes]) -> frozenset[bytes]:
    found = set()
    for value in values:
        try:
            found.add(rule.value_key(value))
        except InvalidValue:
            continue
    return frozenset(found)


def _excluded(f: ResolvedFilter, hidden: frozenset[str]) -> frozenset[str]:
    """The hidden subtypes of `f`'s type: their values count as absent."""
    if not hidden:
        return hidden
    return hidden.intersection(at.key for at in f.subtypes)


def _shown(entry: Entry, schema: Schema, resolved: Resolved,
           excluded: frozenset[str]) -> Iterable[bytes]:
    if not excluded:
        return entry.values_for(schema, resolved)
    return (value for key in entry.keys_for(schema, resolved)
            if type_key(key) not in excluded for value in entry.attributes[key])


def _key_sets(schema: Schema, f: ResolvedFilter, resolved: Resolved, rule: MatchingRule,
              hidden: frozenset[str]) -> Callable[[Entry], frozenset[bytes]]:
    """The entry's keys under `rule`, memoised (`_keys`) unless a hidden
    subtype makes them differ between requesters."""
    excluded = _excluded(f, hidden)
    if excluded:
        return lambda entry: _rule_keys(rule, _shown(entry, schema, resolved, excluded))
    return lambda entry: _keys(entry, schema, resolved, rule)


def _keys(entry: Entry, schema: Schema, resolved: Resolved,
          rule: MatchingRule) -> frozenset[bytes]:
    """The keys of the values `resolved` names. Memoised per type and rule
    only: options in a description are the client's text."""
    if resolved.options:
        return _rule_keys(rule, entry.values_for(schema, resolved))
    memo = (resolved.type.key, rule.oid)
    keys: frozenset[bytes] | None = entry.memo.get(memo)
    if keys is None:
        names = entry.keys_for(schema, resolved)
        if not names:
            return _NO_KEYS
        keys = entry.memo[memo] = _rule_keys(
            rule, (v for name in names for v in entry.attributes[name]))
    return keys


def _equality(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    assert isinstance(f.filter, Equality | Approx)
    resolved = _visible(f, hidden)
    rule = f.rule
    if resolved is None or rule is None:
        return _undefined
    try:
        key = rule.assertion_key(f.filter.value)
    except InvalidValue:
        return _undefined
    keys = _key_sets(schema, f, resolved, rule, hidden)

    def test(entry: Entry) -> bool | None:
        return key in keys(entry)

    return test


def _approx(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    assert isinstance(f.filter, Approx)
    resolved = _visible(f, hidden)
    rule = f.rule
    if resolved is None or rule is None or rule.oid not in approx.PHONETIC:
        return _equality(schema, f, hidden)
    asserted = approx.assertion_keys(f.filter.value)
    excluded = _excluded(f, hidden)

    def words(entry: Entry) -> tuple[tuple[str, ...], ...]:
        if resolved.options or excluded:
            return tuple(approx.value_keys(v)
                         for v in _shown(entry, schema, resolved, excluded))
        memo = (resolved.type.key, "approx")
        found: tuple[tuple[str, ...], ...] | None = entry.memo.get(memo)
        if found is None:
            found = entry.memo[memo] = tuple(
                approx.value_keys(v) for v in entry.values_for(schema, resolved))
        return found

    def test(entry: Entry) -> bool | None:
        return any(approx.matches(keys, asserted) for keys in words(entry))

    return test


def _ordering(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    assert isinstance(f.filter, GreaterOrEqual | LessOrEqual)
    resolved = _visible(f, hidden)
    rule = f.rule
    if resolved is None or rule is None:
        return _undefined
    try:
        bound = rule.assertion_key(f.filter.value)
    except InvalidValue:
        return _undefined
    greater = isinstance(f.filter, GreaterOrEqual)
    key_sets = _key_sets(schema, f, resolved, rule, hidden)

    def test(entry: Entry) -> bool | None:
        keys = key_sets(entry)
        if greater:
            return any(k >= bound for k in keys)
        return any(k <= bound for k in keys)

    return test


def substrings_match(value: bytes, initial: bytes | None, middle: Iterable[bytes],
                     final: bytes | None) -> bool:
    """Whether normalised `value` holds the normalised pieces in order."""
    pos = 0
    end = len(value)
    if initial is not None:
        if not value.startswith(initial):
            return False
        pos = len(initial)
    if final is not None:
        if not value.endswith(final) or end - len(final) < pos:
            return False
        end -= len(final)
    for piece in middle:
        found = value.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _substrings(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    pieces = f.filter
    assert isinstance(pieces, Substrings)
    resolved = _visible(f, hidden)
    rule = f.rule
    if resolved is None or rule is None:
        return _undefined
    norm = rule.value_key
    try:
        initial = None if pieces.initial is None else norm(pieces.initial)
        middle = tuple(norm(p) for p in pieces.any)
        final = None if pieces.final is None else norm(pieces.final)
    except InvalidValue:
        return _undefined
    keys = _key_sets(schema, f, resolved, rule, hidden)

    def test(entry: Entry) -> bool | None:
        return any(substrings_match(k, initial, middle, final) for k in keys(entry))

    return test


def _present(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    resolved = _visible(f, hidden)
    if resolved is None:
        return _undefined
    if resolved.key == "objectclass":
        return _true
    excluded = _excluded(f, hidden)

    def test(entry: Entry) -> bool | None:
        return bool(entry.keys_for(schema, resolved))

    def test_shown(entry: Entry) -> bool | None:
        return any(type_key(k) not in excluded for k in entry.keys_for(schema, resolved))

    return test_shown if excluded else test


def _extensible(schema: Schema, f: ResolvedFilter, hidden: frozenset[str]) -> Predicate:
    match = f.filter
    assert isinstance(match, Extensible)
    resolved = None
    if match.attribute is not None:
        resolved = _visible(f, hidden)
        if resolved is None:
            return _undefined
    rule = f.rule
    if rule is None or rule.kind == "substrings":
        return _undefined
    try:
        key = rule.assertion_key(match.value)
    except InvalidValue:
        return _undefined
    keys = _extensible_keys(schema, f, resolved, rule, hidden, match.dn_attributes)
    if rule.kind == "ordering":
        return lambda entry: any(k < key for k in keys(entry))
    return lambda entry: key in keys(entry)


def _extensible_keys(schema: Schema, f: ResolvedFilter, resolved: Resolved | None,
                     rule: MatchingRule, hidden: frozenset[str], dn_attributes: bool,
                     ) -> Callable[[Entry], frozenset[bytes]]:
    """The keys under `rule` of every value an extensible match compares:
    the type's (or every applicable type's), and with dnAttributes the
    DN's values of those types."""
    excluded: frozenset[str] = frozenset()
    if resolved is None:
        types = _applicable(schema, rule) - hidden
        memo: tuple[object, ...] | None = ("ext", rule.oid, hidden, dn_attributes)
    else:
        excluded = _excluded(f, hidden)
        types = frozenset(at.key for at in f.subtypes) - excluded
        memo = None if resolved.options or excluded else (
            "ext", rule.oid, resolved.type.key, dn_attributes)

    def values(entry: Entry) -> Iterator[bytes]:
        if resolved is not None and resolved.options:
            yield from _shown(entry, schema, resolved, excluded)
        else:
            for name, found in entry.attributes.items():
                if type_key(name) in types:
                    yield from found
        if dn_attributes:
            for rdn in entry.dn.rdns:
                yield from (ava.value.encode() for ava in rdn.avas if ava.key in types)

    def keys(entry: Entry) -> frozenset[bytes]:
        if memo is None:
            return _rule_keys(rule, values(entry))
        found: frozenset[bytes] | None = entry.memo.get(memo)
        if found is None:
            found = _rule_keys(rule, values(entry))
            if found:
                entry.memo[memo] = found
        return found

    return keys


@lru_cache(maxsize=256)
def _applicable(schema: Schema, rule: MatchingRule) -> frozenset[str]:
    """The attribute types `rule` applies to (RFC 4512 §4.1.4)."""
    return frozenset(
        at.key for at in schema.attribute_types()
        if rule in (schema.equality(at), schema.ordering(at), schema.substrings(at))
        or (at.syntax is not None and covers(rule.syntax, at.syntax)))


COMPILERS: dict[type, Callable[..., Predicate]] = {
    And: _and,
    Or: _or,
    Not: _not,
    Equality: _equality,
    Approx: _approx,
    GreaterOrEqual: _ordering,
    LessOrEqual: _ordering,
    Substrings: _substrings,
    Present: _present,
    Extensible: _extensible,
}


@dataclass(init=False, unsafe_hash=True, slots=True)
class Tested:
    """The attribute types (type keys) a filter looks at."""

    named: Final[frozenset[str]]  # the types it names, whether or not an entry holds them
    family: Final[frozenset[str]]  # their subtypes, looked at through them
    untyped: Final[bool]  # an extensible match without a type: every attribute

    def __init__(self, named: frozenset[str], family: frozenset[str], untyped: bool) -> None:
        self.named = named
        self.family = family
        self.untyped = untyped

    def on(self, entry: Entry) -> frozenset[str]:
        """The types the filter looks at on `entry`."""
        if not self.family and not self.untyped:
            return self.named
        present = entry_types(entry)
        found = self.named | (self.family & present)
        if self.untyped:
            found |= present | {ava.key for rdn in entry.dn.rdns for ava in rdn.avas}
        return found


# Entries of one object class mostly hold the same keys: the set of their
# type keys is shared, in a cache bounded in bytes (as `Entry.types` is).
_TYPE_KEYS_COST = 200
_TYPE_KEYS: BoundedCache[tuple[str, ...], frozenset[str]] = BoundedCache(1024 * 1024)


def entry_types(entry: Entry) -> frozenset[str]:
    """The type keys of the entry's attributes (without options)."""
    found = entry.memo.get("type keys")
    if found is None:
        keys = tuple(entry.attributes)
        found = _TYPE_KEYS.get(keys)
        if found is None:
            found = frozenset(type_key(k) for k in keys)
            _TYPE_KEYS.put(keys, found, _TYPE_KEYS_COST * len(keys))
        entry.memo["type keys"] = found
    return found


def tested(schema: Schema, f: ResolvedFilter) -> Tested:
    """What `f` looks at; kept for small filters only, as compiled predicates are."""
    return _tested_cached(schema, f) if f.small else _tested(f)


@lru_cache(maxsize=8192)
def _tested_cached(schema: Schema, f: ResolvedFilter) -> Tested:
    return _tested(f)


def _tested(f: ResolvedFilter) -> Tested:
    named: set[str] = set()
    family: set[str] = set()
    untyped = False
    pending = [f]
    while pending:
        item = pending.pop()
        if isinstance(item.filter, And | Or | Not):
            pending.extend(item.parts)
        elif item.filter.attribute is None:
            untyped = True
        elif item.attribute is not None:
            named.add(item.attribute.type.key)
            family.update(at.key for at in item.subtypes)
    return Tested(frozenset(named), frozenset(family - named), untyped)
