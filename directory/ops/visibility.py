"""What a requester may see of an entry (slapd.access(5), "OPERATION
REQUIREMENTS"), asked of the operation's access view.

- A search considers an entry only with search (s) on its `entry`
  pseudo-attribute and returns it only with read (r) on it.
- A filter (the search's, or the assertion control's, RFC 4528) tests an
  attribute only with search access to it on that entry; without, its
  tests are Undefined whether or not the entry holds the attribute, so a
  filter never tells whether a value the requester may not read exists:
  `(!(userPassword=*))` is Undefined, not True, for every entry.
- A result (search entries, pre- and post-read, RFC 4527) shows only the
  attributes the requester may read; without read on the entry, none.
- Sort keys (RFC 2891) and compared values use only the values of types
  the requester has the right to: the others count as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from directory.acl.rights import Rights
from directory.acl.view import NOTHING, View
from directory.entry import Entry, Resolved, type_key
from directory.operation import Operation
from directory.predicates import Predicate, compile_filter, entry_types, tested
from directory.resolved_filter import ResolvedFilter
from directory.schema import Schema

CANDIDATE = Rights.SEARCH | Rights.READ


def view_of(op: Operation) -> View:
    assert op.access is not None, "the access overlay sets the view"
    return op.access


def _evaluator(schema: Schema, f: ResolvedFilter) -> Callable[[Entry, frozenset[str]], bool | None]:
    """`f` evaluated with some attributes hidden, compiled once per hidden set."""
    compiled: dict[frozenset[str], Predicate] = {}

    def evaluate(entry: Entry, hidden: frozenset[str]) -> bool | None:
        predicate = compiled.get(hidden)
        if predicate is None:
            predicate = compiled[hidden] = compile_filter(schema, f, hidden)
        return predicate(entry)

    return evaluate


def filter_test(schema: Schema, view: View, f: ResolvedFilter) -> Predicate:
    """`f` as the requester may evaluate it on each entry."""
    plain = compile_filter(schema, f)
    if view.who.is_root:
        return plain
    looks_at = tested(schema, f)
    evaluate = _evaluator(schema, f)

    def test(entry: Entry) -> bool | None:
        denied = view.lacking(entry, Rights.SEARCH, looks_at.on(entry))
        return evaluate(entry, denied) if denied else plain(entry)

    return test


def search_test(schema: Schema, view: View, f: ResolvedFilter, exact: bool) -> Predicate:
    """Whether a search returns the entry: searchable and readable, and the
    filter True as the requester may evaluate it. `exact`: the index found
    exactly the entries the filter is True for (when nothing is hidden)."""
    plain = compile_filter(schema, f)
    if view.who.is_root:
        return (lambda entry: True) if exact else plain
    looks_at = tested(schema, f)
    evaluate = _evaluator(schema, f)
    allows = view.allows

    def candidate(entry: Entry) -> bool | None:
        if not allows(entry, CANDIDATE):
            return False
        denied = view.lacking(entry, Rights.SEARCH, looks_at.on(entry))
        if denied:
            return evaluate(entry, denied)
        return True if exact else plain(entry)

    return candidate


def hidden_in_result(view: View, entry: Entry, wanted: frozenset[str] | None,
                     computed: Iterable[str]) -> frozenset[str]:
    """The types a result for `entry`, which the requester may read, leaves
    out; `wanted` names the types the request selects, None for all."""
    if view.who.is_root:
        return NOTHING
    present = entry_types(entry)
    if computed:
        present = present.union(computed)
    return view.lacking(entry, Rights.READ, present if wanted is None else present & wanted)


def hidden_in_readback(view: View, entry: Entry, wanted: frozenset[str] | None) -> frozenset[str]:
    """Like `hidden_in_result`, for an entry the requester may not read at all."""
    if view.who.is_root or view.allows(entry, Rights.READ):
        return hidden_in_result(view, entry, wanted, ())
    return entry_types(entry)


def values_with(view: View, schema: Schema, entry: Entry, resolved: Resolved,
                wanted: Rights) -> list[bytes]:
    """The values of `resolved` (and its subtypes) on `entry` whose type the
    requester has `wanted` on."""
    keys = entry.keys_for(schema, resolved)
    if not view.who.is_root:
        keys = tuple(k for k in keys if view.allows(entry, wanted, type_key(k)))
    return [value for key in keys for value in entry.attributes[key]]
