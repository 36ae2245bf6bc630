"""Choose index lookups for a search filter (DESIGN.md, "Storage").

- The plan returns a superset of the matching entries, or None when the
  filter cannot be narrowed by the indexes; the search evaluates the full
  filter on every candidate, so a plan only has to be sound. The one
  exception is an equality on an indexed type without options: the index
  holds the same keys the filter compares, so its hits are the answer.
- Equality uses the attribute's equality key; an initial substring uses a
  key prefix when the attribute's equality and substring rules normalise
  the same way; presence lists every entry holding the attribute.
- An AND is narrowed by any indexed part, an OR only if every part is.
- NOT, ordering, approximate and extensible matches are not indexed.
- An attribute with subtypes (`name` covers `cn`, `sn`, ...) is not
  indexed under its own key alone, so it is never planned.
- The plan reads the filter as the dispatcher resolved it
  (`directory.resolved_filter`): no description is resolved here.
"""

from __future__ import annotations

from directory.backend import Equal, IndexQuery, Intersection, Prefix, Presence, Union
from directory.matching import InvalidValue
from directory.protocol.filter import And, Equality, Or, Present, Substrings
from directory.resolved_filter import ResolvedFilter
from directory.schema import AttributeType

PREFIX_RULES = frozenset({
    "caseignorematch", "caseexactmatch", "caseignoreia5match", "caseexactia5match",
    "telephonenumbermatch", "numericstringmatch",
})


def _indexed(indexed: frozenset[str], f: ResolvedFilter) -> AttributeType | None:
    resolved = f.attribute
    if resolved is None or resolved.type.key not in indexed:
        return None
    if len(f.subtypes) > 1:
        return None
    return resolved.type


def plan(indexed: frozenset[str], f: ResolvedFilter) -> IndexQuery | None:
    item = f.filter
    if isinstance(item, Equality):
        at = _indexed(indexed, f)
        rule = f.equality
        if at is None or rule is None:
            return None
        try:
            return Equal(at.key, rule.assertion_key(item.value))
        except InvalidValue:
            return None
    if isinstance(item, Substrings):
        at = _indexed(indexed, f)
        rule = f.equality
        if at is None or rule is None or item.initial is None:
            return None
        if not PREFIX_RULES.intersection(n.lower() for n in rule.names):
            return None
        try:
            prefix = rule.assertion_key(item.initial)
        except InvalidValue:
            return None
        return Prefix(at.key, prefix) if prefix else None
    if isinstance(item, Present):
        at = _indexed(indexed, f)
        if at is None or at.key == "objectclass":
            return None
        return Presence(at.key)
    if isinstance(item, And):
        parts = tuple(p for p in (plan(indexed, c) for c in f.parts) if p is not None)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Intersection(parts)
    if isinstance(item, Or):
        subplans = [plan(indexed, c) for c in f.parts]
        if not subplans or any(p is None for p in subplans):
            return None
        return Union(tuple(p for p in subplans if p is not None))
    return None


def exact(query: IndexQuery | None, f: ResolvedFilter) -> bool:
    """Whether the entries `query` finds are exactly those `f` is True for
    (for a requester who may search the attribute on each of them)."""
    if not (isinstance(query, Equal) and isinstance(f.filter, Equality)):
        return False
    return f.attribute is not None and not f.attribute.options
