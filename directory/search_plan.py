"""Choose index lookups for a search filter (DESIGN.md, "Storage").

- The plan returns a superset of the matching entries, or None when the
  filter cannot be narrowed by the indexes; the search evaluates the full
  filter on every candidate, so a plan only has to be sound. The one
  exception is an equality on an indexed type without options: the index
  holds the same keys the filter compares, so its hits are the answer.
- Equality uses the attribute's equality key; an initial substring uses a
  key prefix when the attribute's equality and substring rules normalise
  the same way; presence lists every entry holding the attribute.
- With a `sub` index, a substring assertion also looks up grams of its
  pieces (`index_keys.probes`), the initial one only where no prefix
  serves it.
- An AND is narrowed by any indexed part, an OR only if every part is.
- NOT, ordering, approximate and extensible matches are not indexed.
- An attribute with subtypes (`name` covers `cn`, `sn`, ...) is not
  indexed under its own key alone, so it is never planned.
- With index statistics (`estimate`, the backend's), the plan is pruned:
  an AND keeps its most selective part, and the next ones only while each
  selects at most `WORTH` times as many entries as that one, `MAX_PARTS`
  in all, none once that one selects `FEW` or fewer; an OR selects the sum
  of its parts. A part, or a plan, selecting more than one entry in
  `index_keys.SCAN_SHARE` of the directory (the estimate of
  (objectClass=*), which every entry holds) is unselective: dropped from
  an AND, and a whole plan that is gives way to a scan.
- A gram a bulk load left out (index_stats.py, `unkept`) is estimated at
  more entries than the directory holds, so pruning drops it from every
  AND, an OR holding it selects too many, and no plan looks it up. A plan
  without an estimate is the unpruned one: where a filter may hold
  substrings, the caller passes the backend's.
- The plan reads the filter as the dispatcher resolved it
  (`directory.resolved_filter`): no description is resolved here.
"""

from __future__ import annotations

from collections.abc import Callable

from directory.backend import Equal, IndexQuery, Intersection, Prefix, Presence, Union
from directory.backend.index_keys import SCAN_SHARE, probes, substring_name
from directory.matching import InvalidValue
from directory.protocol.filter import And, Equality, Or, Present, Substrings
from directory.resolved_filter import ResolvedFilter
from directory.schema import AttributeType

Estimate = Callable[[IndexQuery], int]
EVERY_ENTRY = Presence("objectclass")
WORTH = 4
MAX_PARTS = 3
FEW = 16

PREFIX_RULES = frozenset({
    "caseignorematch", "caseexactmatch", "caseignoreia5match", "caseexactia5match",
    "telephonenumbermatch", "numericstringmatch",
})


def _plannable(f: ResolvedFilter) -> AttributeType | None:
    resolved = f.attribute
    if resolved is None or len(f.subtypes) > 1:
        return None
    return resolved.type


def _indexed(indexed: frozenset[str], f: ResolvedFilter) -> AttributeType | None:
    at = _plannable(f)
    return at if at is not None and at.key in indexed else None


def plan(indexed: frozenset[str], f: ResolvedFilter,
         estimate: Estimate | None = None) -> IndexQuery | None:
    query = _plan(indexed, f)
    if query is None or estimate is None:
        return query
    bound = estimate(EVERY_ENTRY) // SCAN_SHARE
    pruned, selects = _prune(query, estimate, bound)
    return None if selects > bound else pruned


def _prune(query: IndexQuery, estimate: Estimate, bound: int) -> tuple[IndexQuery, int]:
    """The query narrowed to its selective parts, and about what it selects."""
    if isinstance(query, Union):
        parts = [_prune(q, estimate, bound) for q in query.queries]
        return Union(tuple(q for q, _ in parts)), sum(n for _, n in parts)
    if not isinstance(query, Intersection):
        return query, estimate(query)
    ranked = sorted((_prune(q, estimate, bound) for q in query.queries),
                    key=lambda part: part[1])
    best, fewest = ranked[0]
    if fewest <= FEW:
        return best, fewest
    kept = [q for q, n in ranked[:MAX_PARTS] if n <= min(WORTH * fewest, bound)]
    if not kept:
        return best, fewest
    return (kept[0] if len(kept) == 1 else Intersection(tuple(kept))), fewest


def _substrings(indexed: frozenset[str], f: ResolvedFilter,
                item: Substrings) -> IndexQuery | None:
    at = _plannable(f)
    if at is None:
        return None
    parts: list[IndexQuery] = []
    prefix = _prefix(f, at, item) if at.key in indexed else None
    if prefix is not None:
        parts.append(prefix)
    # f.rule is the substrings rule (or equality): the grams' normalisation.
    if f.rule is not None and substring_name(at.key) in indexed:
        keyer = f.rule.value_key
        initial = item.initial if prefix is None else None
        pieces = [p for p in (initial, *item.any, item.final) if p is not None]
        try:
            grams = probes(keyer(p) for p in pieces)
        except InvalidValue:
            grams = ()
        parts.extend(Equal(substring_name(at.key), gram) for gram in grams)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Intersection(tuple(parts))


def _prefix(f: ResolvedFilter, at: AttributeType, item: Substrings) -> IndexQuery | None:
    rule = f.equality
    if rule is None or item.initial is None:
        return None
    if not PREFIX_RULES.intersection(n.lower() for n in rule.names):
        return None
    try:
        prefix = rule.assertion_key(item.initial)
    except InvalidValue:
        return None
    return Prefix(at.key, prefix) if prefix else None


def _plan(indexed: frozenset[str], f: ResolvedFilter) -> IndexQuery | None:
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
        return _substrings(indexed, f, item)
    if isinstance(item, Present):
        at = _indexed(indexed, f)
        if at is None or at.key == "objectclass":
            return None
        return Presence(at.key)
    if isinstance(item, And):
        parts = tuple(p for p in (_plan(indexed, c) for c in f.parts) if p is not None)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Intersection(parts)
    if isinstance(item, Or):
        subplans = [_plan(indexed, c) for c in f.parts]
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
