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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class ResolvedFilter:
    filter: Filter
    # The filters an AND or OR holds, or the one a NOT negates, resolved.
    parts: tuple[ResolvedFilter, ...] = field(default=(), compare=False)
    attribute: Resolved | None = field(default=None, compare=False)
    # The attribute's type and every type below it.
    subtypes: tuple[AttributeType, ...] = field(default=(), compare=False)
    rule: MatchingRule | None = field(default=None, compare=False)
    equality: MatchingRule | None = field(default=None, compare=False)


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
    if isinstance(f, And | Or):
        return ResolvedFilter(f, tuple(resolve_filter(schema, p) for p in f.filters))
    if isinstance(f, Not):
        return ResolvedFilter(f, (resolve_filter(schema, f.filter),))
    resolved = None if f.attribute is None else find(schema, f.attribute)
    at = None if resolved is None else resolved.type
    return ResolvedFilter(f, (), resolved, () if at is None else schema.subtypes(at),
                          RULES[type(f)](schema, f, at), _equality(schema, f, at))
