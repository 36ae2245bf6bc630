"""Search filters compiled into predicates over entries (RFC 4511 §4.5.1.7).

- Evaluation is three-valued: True, False, or None for Undefined. AND is
  False if any part is False, else Undefined if any part is, else True; OR
  is the dual; NOT of Undefined is Undefined (RFC 4511 §4.5.1.7).
- An unknown attribute, an attribute without the needed matching rule, or
  an assertion value that does not fit the rule's syntax gives Undefined.
- A description covers its subtypes and options: (name=x) matches cn and
  sn values, (cn=x) matches cn;lang-en values (RFC 4512 §2.5).
- Equality and approximate matches use the equality rule (there is no
  separate approximate rule; RFC 4511 allows it); ordering uses the ordering
  rule; substrings use the substrings rule's normalisation.
- Extensible match (RFC 4511 §4.5.1.7.7): the named rule, or the
  attribute's equality rule; without a type, every attribute the rule can
  apply to; with dnAttributes, the entry's DN values too.
- Attributes hidden from the requester (those it has no search access to
  on the entry) evaluate to Undefined whether or not the entry holds them,
  so a filter cannot probe them; a hidden subtype of a type the filter
  names (cn under name) counts as absent. `tested` names the attribute
  types a filter looks at on an entry, so the caller knows which to ask
  the access policy about.
- Compiled predicates are cached per (filter, hidden set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from directory.entry import Entry, Resolved, find, type_key
from directory.matching import InvalidValue, MatchingRule
from directory.protocol.filter import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)
from directory.schema import Schema

Predicate = Callable[[Entry], bool | None]


def _undefined(entry: Entry) -> bool | None:
    return None


def _true(entry: Entry) -> bool | None:
    return True


def compile_filter(schema: Schema, f: Filter, hidden: frozenset[str] = frozenset()) -> Predicate:
    return _compile(schema, f, hidden)


@lru_cache(maxsize=8192)
def _compile(schema: Schema, f: Filter, hidden: frozenset[str]) -> Predicate:
    return COMPILERS[type(f)](schema, f, hidden)


def _and(schema: Schema, f: And, hidden: frozenset[str]) -> Predicate:
    parts = tuple(_compile(schema, c, hidden) for c in f.filters)

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


def _or(schema: Schema, f: Or, hidden: frozenset[str]) -> Predicate:
    parts = tuple(_compile(schema, c, hidden) for c in f.filters)

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


def _not(schema: Schema, f: Not, hidden: frozenset[str]) -> Predicate:
    inner = _compile(schema, f.filter, hidden)

    def test(entry: Entry) -> bool | None:
        value = inner(entry)
        return None if value is None else not value

    return test


def _visible(schema: Schema, attribute: str, hidden: frozenset[str]) -> Resolved | None:
    resolved = find(schema, attribute)
    if resolved is None or resolved.type.key in hidden:
        return None
    return resolved


def _excluded(schema: Schema, resolved: Resolved, hidden: frozenset[str]) -> frozenset[str]:
    """The hidden subtypes of `resolved`'s type: their values count as absent."""
    if not hidden:
        return hidden
    return hidden.intersection(at.key for at in schema.subtypes(resolved.type))


def _shown(entry: Entry, schema: Schema, resolved: Resolved,
           excluded: frozenset[str]) -> Iterable[bytes]:
    if not excluded:
        return entry.values_for(schema, resolved)
    return (value for key in entry.keys_for(schema, resolved)
            if type_key(key) not in excluded for value in entry.attributes[key])


def _normalised(rule: MatchingRule, values: Iterable[bytes]) -> frozenset[bytes]:
    found = set()
    for value in values:
        try:
            found.add(rule.value_key(value))
        except InvalidValue:
            continue
    return frozenset(found)


def _key_sets(schema: Schema, resolved: Resolved, rule: MatchingRule,
              hidden: frozenset[str]) -> Callable[[Entry], frozenset[bytes]]:
    """The entry's normalised values under `rule`, memoised on the entry
    unless a hidden subtype makes them differ between requesters."""
    excluded = _excluded(schema, resolved, hidden)
    if excluded:
        return lambda entry: _normalised(rule, _shown(entry, schema, resolved, excluded))
    memo = ("keys", resolved.key, rule.oid)

    def keys(entry: Entry) -> frozenset[bytes]:
        found = entry.memo.get(memo)
        if found is None:
            found = entry.memo[memo] = _normalised(rule, entry.values_for(schema, resolved))
        return found

    return keys


def _equality(schema: Schema, f: Equality | Approx, hidden: frozenset[str]) -> Predicate:
    resolved = _visible(schema, f.attribute, hidden)
    rule = None if resolved is None else schema.equality(resolved.type)
    if resolved is None or rule is None:
        return _undefined
    try:
        key = rule.assertion_key(f.value)
    except InvalidValue:
        return _undefined
    keys = _key_sets(schema, resolved, rule, hidden)

    def test(entry: Entry) -> bool | None:
        return key in keys(entry)

    return test


def _ordering(schema: Schema, f: GreaterOrEqual | LessOrEqual,
              hidden: frozenset[str]) -> Predicate:
    resolved = _visible(schema, f.attribute, hidden)
    rule = None if resolved is None else schema.ordering(resolved.type)
    if resolved is None or rule is None:
        return _undefined
    try:
        bound = rule.assertion_key(f.value)
    except InvalidValue:
        return _undefined
    greater = isinstance(f, GreaterOrEqual)
    key_sets = _key_sets(schema, resolved, rule, hidden)

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


def _substrings(schema: Schema, f: Substrings, hidden: frozenset[str]) -> Predicate:
    resolved = _visible(schema, f.attribute, hidden)
    rule = None
    if resolved is not None:
        rule = schema.substrings(resolved.type) or schema.equality(resolved.type)
    if resolved is None or rule is None:
        return _undefined
    norm = rule.value_key
    try:
        initial = None if f.initial is None else norm(f.initial)
        middle = tuple(norm(p) for p in f.any)
        final = None if f.final is None else norm(f.final)
    except InvalidValue:
        return _undefined
    keys = _key_sets(schema, resolved, rule, hidden)

    def test(entry: Entry) -> bool | None:
        return any(substrings_match(k, initial, middle, final) for k in keys(entry))

    return test


def _present(schema: Schema, f: Present, hidden: frozenset[str]) -> Predicate:
    resolved = _visible(schema, f.attribute, hidden)
    if resolved is None:
        return _undefined
    if resolved.key == "objectclass":
        return _true
    excluded = _excluded(schema, resolved, hidden)

    def test(entry: Entry) -> bool | None:
        return bool(entry.keys_for(schema, resolved))

    def test_shown(entry: Entry) -> bool | None:
        return any(type_key(k) not in excluded for k in entry.keys_for(schema, resolved))

    return test_shown if excluded else test


def _extensible(schema: Schema, f: Extensible, hidden: frozenset[str]) -> Predicate:
    resolved = None
    if f.attribute is not None:
        resolved = _visible(schema, f.attribute, hidden)
        if resolved is None:
            return _undefined
    if f.rule is not None:
        rule = schema.matching_rule(f.rule)
    elif resolved is not None:
        rule = schema.equality(resolved.type)
    else:
        rule = None
    if rule is None or rule.kind == "substrings":
        return _undefined
    try:
        key = rule.assertion_key(f.value)
    except InvalidValue:
        return _undefined
    ordering = rule.kind == "ordering"
    excluded = frozenset() if resolved is None else _excluded(schema, resolved, hidden)

    def matches(values: Iterable[bytes]) -> bool:
        for value in values:
            try:
                k = rule.value_key(value)
            except InvalidValue:
                continue
            if (k < key) if ordering else (k == key):
                return True
        return False

    def candidates(entry: Entry) -> Iterable[Iterable[bytes]]:
        if resolved is not None:
            yield _shown(entry, schema, resolved, excluded)
        else:
            for name, values in entry.attributes.items():
                if type_key(name) not in hidden:
                    yield values
        if f.dn_attributes:
            for rdn in entry.dn.rdns:
                for ava in rdn.avas:
                    if ava.key not in hidden and (resolved is None
                                                  or ava.key == resolved.type.key):
                        yield (ava.value.encode(),)

    def test(entry: Entry) -> bool | None:
        return any(matches(values) for values in candidates(entry))

    return test


COMPILERS: dict[type, Callable[..., Predicate]] = {
    And: _and,
    Or: _or,
    Not: _not,
    Equality: _equality,
    Approx: _equality,
    GreaterOrEqual: _ordering,
    LessOrEqual: _ordering,
    Substrings: _substrings,
    Present: _present,
    Extensible: _extensible,
}


@dataclass(frozen=True, slots=True)
class Tested:
    """The attribute types (type keys) a filter looks at."""

    named: frozenset[str]   # the types it names, whether or not an entry holds them
    family: frozenset[str]  # their subtypes, looked at through them
    untyped: bool           # an extensible match without a type: every attribute

    def on(self, entry: Entry) -> frozenset[str]:
        """The types the filter looks at on `entry`."""
        if not self.family and not self.untyped:
            return self.named
        present = entry_types(entry)
        found = self.named | (self.family & present)
        if self.untyped:
            found |= present | {ava.key for rdn in entry.dn.rdns for ava in rdn.avas}
        return found


def entry_types(entry: Entry) -> frozenset[str]:
    """The type keys of the entry's attributes (without options)."""
    found = entry.memo.get("types")
    if found is None:
        found = entry.memo["types"] = frozenset(type_key(k) for k in entry.attributes)
    return found


@lru_cache(maxsize=8192)
def tested(schema: Schema, f: Filter) -> Tested:
    named: set[str] = set()
    family: set[str] = set()
    untyped = False
    pending = [f]
    while pending:
        item = pending.pop()
        if isinstance(item, And | Or):
            pending.extend(item.filters)
        elif isinstance(item, Not):
            pending.append(item.filter)
        elif item.attribute is None:
            untyped = True
        else:
            resolved = find(schema, item.attribute)
            if resolved is not None:
                named.add(resolved.type.key)
                family.update(at.key for at in schema.subtypes(resolved.type))
    return Tested(frozenset(named), frozenset(family - named), untyped)
