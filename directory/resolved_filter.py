"""Search filters with their attribute descriptions resolved against the schema.

- A search's filter is resolved once, by the dispatcher (`resolve_filter`);
  the planner (`directory.search_plan`), the predicates
  (`directory.predicates`) and the access checks read what they need from
  the resolved filter and never resolve a description again.
- Each assertion knows its description resolved (None when unknown or
  malformed: it then evaluates to Undefined, RFC 4511 §4.5.1.7), the type
  and the subtypes it covers (RFC 4512 §2.5), the rule it is evaluated
  with (`RULES`) and the type's equality rule, whose keys the indexes hold.
- A resolved filter compares and hashes as the filter it comes from:
  within one schema, resolution is a function of the filter, so what is
  cached per (schema, filter) may be cached per (schema, resolved filter).
- Small filters, of up to `MAX_CACHED_FILTER` items of up to
  `MAX_CACHED_VALUE` bytes each, are kept resolved, and each resolved
  filter knows whether it is small (`small`): only those are kept compiled
  (`directory.predicates`), so the caches hold a bounded number of bounded
  filters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from directory.entry import Resolved, find
from directory.matching import MatchingRule
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
from directory.schema import AttributeType, Schema

MAX_CACHED_FILTER = 64
MAX_CACHED_VALUE = 256


@dataclass(init=False, eq=False, slots=True)
class ResolvedFilter:
    """Equal and hashed as its filter: the rest follows from it and the schema."""

    filter: Final[Filter]
    small: Final[bool]
    # The filters an AND or OR holds, or the one a NOT negates, resolved.
    parts: Final[tuple[ResolvedFilter, ...]]
    attribute: Final[Resolved | None]
    # The attribute's type and every type below it.
    subtypes: Final[tuple[AttributeType, ...]]
    rule: Final[MatchingRule | None]
    equality: Final[MatchingRule | None]

    def __init__(self, filter: Filter, small: bool, parts: tuple[ResolvedFilter, ...] = (),
                 attribute: Resolved | None = None, subtypes: tuple[AttributeType, ...] = (),
                 rule: MatchingRule | None = None, equality: MatchingRule | None = None) -> None:
        self.filter = filter
        self.small = small
        self.parts = parts
        self.attribute = attribute
        self.subtypes = subtypes
        self.rule = rule
        self.equality = equality

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResolvedFilter) and other.filter == self.filter

    def __hash__(self) -> int:
        return hash(self.filter)


RuleOf = Callable[[Schema, Filter, AttributeType | None], MatchingRule | None]


def _equality(schema: Schema, f: Filter, at: AttributeType | None) -> MatchingRule | None:
    return None if at is None else schema.equality(at)


def _ordering(schema: Schema, f: Filter, at: AttributeType | None) -> MatchingRule | None:
    return None if at is None else schema.ordering(at)


def _substrings(schema: Schema, f: Filter, at: AttributeType | None) -> MatchingRule | None:
    return None if at is None else schema.substrings(at) or schema.equality(at)


def _none(schema: Schema, f: Filter, at: AttributeType | None) -> MatchingRule | None:
    return None


def _extensible(schema: Schema, f: Filter, at: AttributeType | None) -> MatchingRule | None:
    assert isinstance(f, Extensible)
    return _equality(schema, f, at) if f.rule is None else schema.matching_rule(f.rule)


# The rule each kind of assertion is evaluated with: approximate matching
# uses the equality rule, substrings the substrings rule or else equality's.
RULES: Mapping[type, RuleOf] = {
    Equality: _equality,
    Approx: _equality,
    GreaterOrEqual: _ordering,
    LessOrEqual: _ordering,
    Substrings: _substrings,
    Present: _none,
    Extensible: _extensible,
}


def resolve_filter(schema: Schema, f: Filter) -> ResolvedFilter:
    return _kept(schema, f) if _small(f) else _resolve(schema, f)


def _small(f: Filter) -> bool:
    """Whether `f` has at most MAX_CACHED_FILTER items and values of at
    most MAX_CACHED_VALUE bytes (looking no further than that)."""
    budget = MAX_CACHED_FILTER
    pending = [f]
    while pending:
        item = pending.pop()
        budget -= 1
        if budget < 0:
            return False
        if isinstance(item, And | Or):
            pending.extend(item.filters)
        elif isinstance(item, Not):
            pending.append(item.filter)
        elif len(_text_of(item)) > MAX_CACHED_VALUE:
            return False
    return True


def _text_of(item: Filter) -> bytes:
    if isinstance(item, Present):
        return item.attribute.encode()
    if isinstance(item, Substrings):
        return b"".join((item.attribute.encode(), item.initial or b"", *item.any,
                         item.final or b""))
    if isinstance(item, Extensible):
        return ((item.rule or "") + (item.attribute or "")).encode() + item.value
    assert not isinstance(item, And | Or | Not)
    return item.attribute.encode() + item.value


def _resolve(schema: Schema, f: Filter) -> ResolvedFilter:
    return _resolved(schema, f)[0]


_kept = lru_cache(maxsize=8192)(_resolve)


def _resolved(schema: Schema, f: Filter) -> tuple[ResolvedFilter, int]:
    """`f` resolved, and the number of filter items it holds."""
    if isinstance(f, And | Or | Not):
        done = [_resolved(schema, p) for p in (f.filters if isinstance(f, And | Or)
                                               else (f.filter,))]
        items = 1 + sum(n for _, n in done)
        parts = tuple(p for p, _ in done)
        return ResolvedFilter(f, items <= MAX_CACHED_FILTER and all(p.small for p in parts),
                              parts), items
    resolved = None if f.attribute is None else find(schema, f.attribute)
    at = None if resolved is None else resolved.type
    return ResolvedFilter(f, len(_text_of(f)) <= MAX_CACHED_VALUE, (), resolved,
                          () if at is None else schema.subtypes(at),
                          RULES[type(f)](schema, f, at), _equality(schema, f, at)), 1
