"""Search (RFC 4511 §4.5).

- The base must exist (noSuchObject with matchedDN otherwise). The empty
  base with scope base is the root DSE (RFC 4512 §5.1); `cn=Subschema`
  with scope base is the subschema subentry (RFC 4512 §4.2).
- Scopes: base, one, sub, and children (subordinates: everything below
  the base but not the base).
- Entries are returned when the filter is True; False and Undefined both
  exclude (RFC 4511 §4.5.1.7).
- Size limit: the smaller of the client's and the server's (the root DN is
  not bound by the server's); time limit likewise. Exceeding one returns
  what was found so far and sizeLimitExceeded (4) / timeLimitExceeded (3).
  A paged search is one search: the size limit counts the entries of all
  its pages, and the page that reaches it while more entries remain ends
  with sizeLimitExceeded and an empty cookie (as slapd does).
- The scan yields `TICK` every `TICK_EVERY` candidates, matching or not, so
  the server serves other clients while it runs; paged and sorted searches
  gather their matches the same way before the first entry is sent.
- Aliases (RFC 4512 §2.6): with derefAliases finding/always the base is
  dereferenced; with searching/always aliases in scope are replaced by
  the entries they name (for subtree scopes, with their subtrees).
  A loop or a dangling alias gives aliasProblem (33).
- Every referral object in scope is returned as a continuation reference
  instead of an entry, whatever the filter (RFC 3296 §5.4), unless
  ManageDsaIT is given; nothing below it is searched here. They come from
  the DSA's table of referral objects, not from the filter's candidates,
  so an index the filter uses cannot leave them out, and a directory
  without referral objects pays nothing for them.
- typesOnly returns attribute descriptions without values.
- The matched values control (RFC 3876) keeps of each returned entry only
  the values its ValuesReturnFilter matches (`directory.matched_values`);
  with typesOnly, which returns no values, it changes nothing (as slapd).
- The assertion control (RFC 4528) is evaluated on the base entry (the
  root DSE for the empty base) before anything is returned.
- Paged results (RFC 2696): the cookie names a cursor kept on the
  connection for the identity that started it; a page size of 0 releases
  it. Server-side sort (RFC 2891): entries lacking a sort attribute come
  last; an unusable key is reported in the sort response (or fails the
  search when the control is critical).
- Access (`visibility`, `privileges`): search on the base's `entry`
  (noSuchObject when it is not even disclosed); each entry in scope,
  whatever the base (the empty one too), is searched and returned only as
  the requester may (its filter attributes, its `entry`, the attributes
  returned, its sort keys); continuation references need read on the
  referral object's `entry` and `ref`. The root DSE and the subschema
  subentry are readable by anyone (RFC 4512 §5.1).
- The base, the filter, the attribute selection and the matched values
  items come parsed and resolved from the dispatcher (`Operation.target`,
  `.filter`, `.selection`, `.values_return`); nothing here parses or
  resolves them again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from directory import matched_values, referral_urls
from directory.acl.identity import Identity
from directory.acl.rights import Rights
from directory.backend import Equal, IndexQuery, Intersection, Union
from directory.dsa import DSA
from directory.entry import Entry, find
from directory.matching import InvalidValue
from directory.operation import TICK, Operation, Replies, Reply, Tick
from directory.operational import COMPUTED, computed
from directory.ops import assertion, privileges
from directory.ops.visibility import hidden_in_result, search_test, values_with, view_of
from directory.predicates import Predicate, compile_filter
from directory.protocol.controls import (
    MANAGE_DSA_IT,
    PAGED_RESULTS,
    SORT_REQUEST,
    PagedResults,
    SortKey,
    encode_sort_result,
)
from directory.protocol.dn import DN
from directory.protocol.messages import (
    SUCCESS,
    Control,
    Deref,
    EncodedSearchResultEntry,
    Result,
    Scope,
    SearchRequest,
    SearchResultDone,
    SearchResultReference,
)
from directory.protocol.results import LDAPError, ResultCode
from directory.resolved_filter import ResolvedFilter
from directory.root_dse import root_dse, subschema
from directory.search_plan import exact, plan
from directory.selection import Selection, encode_entry, wants_computed

MAX_ALIAS_HOPS = 16
# Whether a walk of each scope from a DN reaches one of its descendants.
REACHES: dict[Scope, Callable[[DN, DN], bool]] = {
    Scope.BASE: lambda start, dn: dn == start,
    Scope.ONE: lambda start, dn: len(dn) == len(start) + 1,
    Scope.SUB: lambda start, dn: True,
    Scope.CHILDREN: lambda start, dn: dn != start,
}
# Candidates looked at between two ticks: a slice of work of a few milliseconds.
TICK_EVERY = 256


@dataclass
class Cursor:
    """A paged search's remaining entries, kept between pages, and how many
    entries its pages returned so far."""

    request: SearchRequest
    entries: list[Entry]
    who: Identity
    returned: int = 0


def handle(op: Operation) -> Replies:
    request = op.request
    assert isinstance(request, SearchRequest)
    dsa = op.dsa
    base = op.target
    if request.scope == Scope.BASE and (not base or base == dsa.subschema_dn):
        special = root_dse(dsa) if not base else subschema(dsa)
        assertion.check(op, special, None)
        return list(_special(op, request, special))
    paged = op.controls.get(PAGED_RESULTS)
    if paged is not None and paged.cookie:
        return _next_page(op, request, paged)
    found = matches(op, request, base)
    if paged is None and SORT_REQUEST not in op.controls:
        return _stream(op, request, found)
    return _gathered(op, request, found, paged)


def _gathered(op: Operation, request: SearchRequest, matches: Iterable[Entry | Reply | Tick],
              paged: PagedResults | None) -> Iterator[Reply | Tick]:
    """A sorted or paged search: every match first, then the (first) page."""
    found: list[Entry] = []
    references: list[Reply] = []
    for item in matches:
        if isinstance(item, Tick):
            yield item
        elif isinstance(item, Reply):
            references.append(item)
        else:
            found.append(item)
    controls: list[Control] = []
    if SORT_REQUEST in op.controls:
        controls.append(_sort(op, found, op.controls[SORT_REQUEST]))
    yield from references
    if paged is None:
        yield from _page(op, request, found, size_limit_of(op, request))
        yield from _with_controls(controls)
        return
    yield from _first_page(op, request, found, paged, controls)


def _special(op: Operation, request: SearchRequest, entry: Entry) -> Iterator[Reply]:
    predicate = compile_filter(op.dsa.schema, _filter(op))
    if predicate(entry) is True:
        op.entries += 1
        yield entry_reply(op, request, entry, ordinary=False)
    yield Reply(SearchResultDone(SUCCESS))


def size_limit_of(op: Operation, request: SearchRequest) -> int:
    server = 0 if op.session.is_root else op.dsa.config.size_limit
    limits = [n for n in (request.size_limit, server) if n > 0]
    return min(limits) if limits else 0


def deadline_of(op: Operation, request: SearchRequest) -> float | None:
    server = 0 if op.session.is_root else op.dsa.config.time_limit
    limits = [n for n in (request.time_limit, server) if n > 0]
    return op.started + min(limits) if limits else None


def _follow(dsa: DSA, entry: Entry) -> Entry:
    seen = {entry.dn}
    while "alias" in entry.object_classes:
        target = entry.first("aliasedobjectname")
        if target is None:
            raise LDAPError(ResultCode.ALIAS_PROBLEM, f"alias {entry.dn} names no entry")
        dn = dsa.parse_dn(target.decode())
        found = dsa.backend.get(dn)
        if found is None:
            raise LDAPError(ResultCode.ALIAS_PROBLEM, f"alias {entry.dn} names missing {dn}",
                            matched=dsa.matched(dn))
        if dn in seen or len(seen) > MAX_ALIAS_HOPS:
            raise LDAPError(ResultCode.ALIAS_PROBLEM, f"alias loop at {entry.dn}")
        seen.add(dn)
        entry = found
    return entry


def matches(op: Operation, request: SearchRequest, base: DN, timed: bool = True,
            narrow: IndexQuery | None = None) -> Iterator[Entry | Reply | Tick]:
    """Entries matching the filter, and continuation references, in scope;
    under the time limit unless not `timed` (a persist search's passes);
    only among the entries `narrow` gives, when given (the syncrepl
    provider's entries changed after a cookie)."""
    dsa = op.dsa
    view = view_of(op)
    if not base:
        assertion.check(op, root_dse(dsa), None)
    else:
        base_entry = dsa.backend.get(base)
        if base_entry is None:
            raise privileges.not_found(view, base)
        privileges.search_base(view, base_entry)
        assertion.check(op, base_entry, view)
        if request.deref in (Deref.FINDING, Deref.ALWAYS):
            base = _follow(dsa, base_entry).dn
    resolved = _filter(op)
    query = plan(dsa.backend.indexed, resolved, dsa.backend.estimate)
    referrals = {} if MANAGE_DSA_IT in op.controls else dsa.referral_objects()
    deref = request.deref in (Deref.IN_SEARCHING, Deref.ALWAYS)
    if deref and query is not None:
        # An alias in scope leads to entries the index cannot promise.
        object_class = dsa.schema.attribute("objectClass")
        rule = dsa.schema.equality(object_class)
        assert rule is not None
        query = Union((query, Equal(object_class.key, rule.assertion_key(b"alias"))))
    predicate = search_test(dsa.schema, view, resolved, exact(query, resolved))
    if narrow is not None:
        query = narrow if query is None else Intersection((query, narrow))
    deadline = deadline_of(op, request) if timed else None
    return _walk(op, request, base, predicate, query, referrals, deref, deadline)


def content_test(op: Operation, request: SearchRequest,
                 base: DN) -> Callable[[Entry], bool]:
    """Whether `matches` would give this entry, one in scope, as it reads
    now: the filter True as the requester may evaluate it, not below a
    referral object (without ManageDsaIT), not an alias the search
    dereferences. The base was checked by `matches`."""
    dsa = op.dsa
    predicate = search_test(dsa.schema, view_of(op), _filter(op), False)
    referrals = {} if MANAGE_DSA_IT in op.controls else dsa.referral_objects()
    below = [dn for dn in referrals if dn.is_descendant_of(base)]
    deref = request.deref in (Deref.IN_SEARCHING, Deref.ALWAYS)

    def holds(entry: Entry) -> bool:
        if below and _under_referral(entry.dn, below, base):
            return False
        if deref and "alias" in entry.object_classes and entry.dn != base:
            return False
        return predicate(entry) is True

    return holds


def _walk(op: Operation, request: SearchRequest, base: DN, predicate: Predicate,
          query: IndexQuery | None, referrals: dict[DN, Entry], deref: bool,
          deadline: float | None) -> Iterator[Entry | Reply | Tick]:
    dsa = op.dsa
    seen: set[int] = set()
    pending = [(base, request.scope)]
    looked = 0
    while pending:
        start, scope = pending.pop()
        below = [dn for dn in referrals if dn.is_descendant_of(start)]
        for dn in _in_scope(below, start, scope, base):
            if _may_refer(op, referrals[dn]):
                uris = referral_urls.continuation(referrals[dn].get("ref"), dn, request.scope)
                yield Reply(SearchResultReference(uris))
        for found in dsa.backend.search(start, scope, query):
            looked += 1
            if looked % TICK_EVERY == 0:
                yield TICK
            entry = found
            if deadline is not None and time.monotonic() > deadline:
                raise LDAPError(ResultCode.TIME_LIMIT_EXCEEDED, "time limit exceeded")
            if below and _under_referral(entry.dn, below, base):
                continue
            if deref and "alias" in entry.object_classes and entry.dn != base:
                target = _follow(dsa, entry)
                if request.scope == Scope.SUB:
                    pending.append((target.dn, Scope.SUB))
                    continue
                entry = target
            if entry.id in seen:
                continue
            seen.add(entry.id)
            if predicate(entry) is True:
                yield entry


def _may_refer(op: Operation, entry: Entry) -> bool:
    view = view_of(op)
    return view.allows(entry, Rights.READ) and view.allows(entry, Rights.READ, "ref")


def _under_referral(dn: DN, referrals: list[DN], base: DN) -> bool:
    return any(dn.is_descendant_of(r) and r != base for r in referrals)


def _in_scope(referrals: list[DN], start: DN, scope: Scope, base: DN) -> list[DN]:
    """The referral objects a walk from `start` (their ancestor) reaches: those
    in its scope and below no other one (what lies below a referral object is
    held elsewhere), the base excepted."""
    reaches = REACHES[scope]
    reached = [dn for dn in referrals if dn != base and reaches(start, dn)]
    return [dn for dn in reached if not any(dn.is_descendant_of(r, strict=True)
                                            for r in reached)]


def entry_reply(op: Operation, request: SearchRequest, entry: Entry,
                 ordinary: bool = True) -> Reply:
    """`ordinary`: not the root DSE or the subschema subentry, which have no
    computed attributes and which anyone may read."""
    schema = op.dsa.schema
    selection = op.selection
    assert selection is not None, "the dispatcher resolves a search's selection"
    extra = computed(op.dsa, entry) if ordinary and wants_computed(
        selection, COMPUTED) else {}
    hidden = hidden_in_result(view_of(op), entry, _wanted(selection),
                              extra) if ordinary else frozenset()
    if hidden and extra:
        extra = {k: v for k, v in extra.items() if k not in hidden}
    items = op.values_return
    if items is not None and not request.types_only:
        entry = entry.with_attributes(matched_values.matched(entry.dn, entry.attributes, items))
        extra = matched_values.matched(entry.dn, extra, items)
    body = encode_entry(schema, entry, selection, request.types_only, hidden, extra)
    return Reply(EncodedSearchResultEntry(body))


def _filter(op: Operation) -> ResolvedFilter:
    assert op.filter is not None, "the dispatcher resolves a search's filter"
    return op.filter


def _wanted(selection: Selection) -> frozenset[str] | None:
    return None if selection.all_user or selection.all_operational else selection.names


def _stream(op: Operation, request: SearchRequest,
            matches: Iterable[Entry | Reply | Tick]) -> Iterator[Reply | Tick]:
    limit = size_limit_of(op, request)
    try:
        for item in matches:
            if not isinstance(item, Entry):
                yield item
                continue
            if limit and op.entries >= limit:
                yield Reply(SearchResultDone(Result(ResultCode.SIZE_LIMIT_EXCEEDED, "",
                                                    "size limit exceeded")))
                return
            op.entries += 1
            yield entry_reply(op, request, item)
    except LDAPError as e:
        yield Reply(SearchResultDone(Result(e.code, e.matched, e.message, e.referrals)))
        return
    yield Reply(SearchResultDone(SUCCESS))


def _page(op: Operation, request: SearchRequest, entries: list[Entry],
          limit: int) -> Iterator[Reply]:
    for entry in entries:
        if limit and op.entries >= limit:
            yield Reply(SearchResultDone(Result(ResultCode.SIZE_LIMIT_EXCEEDED, "",
                                                "size limit exceeded")))
            return
        op.entries += 1
        yield entry_reply(op, request, entry)


def _with_controls(controls: list[Control]) -> list[Reply]:
    return [Reply(SearchResultDone(SUCCESS), tuple(controls))]


def _first_page(op: Operation, request: SearchRequest, entries: list[Entry],
                paged: PagedResults, controls: list[Control]) -> Iterator[Reply]:
    size = paged.size or len(entries)
    return _emit_page(op, request, Cursor(request, entries, view_of(op).who), size, controls)


def _emit_page(op: Operation, request: SearchRequest, cursor: Cursor, size: int,
               controls: list[Control]) -> Iterator[Reply]:
    """The next `size` entries of `cursor`, fewer where the size limit ends the search."""
    entries = cursor.entries
    limit = size_limit_of(op, request)
    end = min(size, limit - cursor.returned) if limit else size
    page, rest = entries[:end], entries[end:]
    for entry in page:
        op.entries += 1
        yield entry_reply(op, request, entry)
    returned = cursor.returned + len(page)
    if rest and limit and returned >= limit:
        yield Reply(SearchResultDone(Result(ResultCode.SIZE_LIMIT_EXCEEDED, "",
                                            "size limit exceeded")),
                    (*controls, PagedResults(0, b"").to_control()))
        return
    cookie = b""
    if rest:
        cookie = secrets.token_bytes(12)
        op.session.paged[cookie] = Cursor(request, rest, view_of(op).who, returned)
    controls = [*controls, PagedResults(len(entries), cookie).to_control()]
    yield Reply(SearchResultDone(SUCCESS), tuple(controls))


def _next_page(op: Operation, request: SearchRequest, paged: PagedResults) -> Replies:
    cursor = op.session.paged.pop(paged.cookie, None)
    if not isinstance(cursor, Cursor) or cursor.request.base != request.base or (
            cursor.request.filter != request.filter) or cursor.who != view_of(op).who:
        raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "unknown paged results cookie")
    if paged.size == 0:
        return [Reply(SearchResultDone(SUCCESS), (PagedResults(0, b"").to_control(),))]
    return _emit_page(op, request, cursor, paged.size, [])


def _sort(op: Operation, entries: list[Entry], keys: tuple[SortKey, ...]) -> Control:
    """Sort `entries` in place; return the sort response control."""
    schema = op.dsa.schema
    view = view_of(op)
    plans = []
    for key in keys:
        resolved = find(schema, key.attribute)
        rule = None
        if resolved is not None:
            rule = (schema.matching_rule(key.ordering_rule) if key.ordering_rule
                    else schema.ordering(resolved.type) or schema.equality(resolved.type))
        if resolved is None or rule is None:
            if SORT_REQUEST in op.critical:
                raise LDAPError(ResultCode.UNAVAILABLE_CRITICAL_EXTENSION,
                                f"cannot sort on {key.attribute}")
            code = (ResultCode.NO_SUCH_ATTRIBUTE if resolved is None
                    else ResultCode.INAPPROPRIATE_MATCHING)
            return encode_sort_result(code, key.attribute)
        plans.append((key, resolved, rule))
    for key, resolved, rule in reversed(plans):
        def sort_key(entry: Entry) -> bytes | None:
            found = []
            for value in values_with(view, schema, entry, resolved,  # noqa: B023
                                     Rights.READ):
                try:
                    found.append(rule.value_key(value))  # noqa: B023
                except InvalidValue:
                    continue
            if not found:
                return None
            return max(found) if key.reverse else min(found)  # noqa: B023

        keyed = [(sort_key(e), e) for e in entries]
        present = [(k, e) for k, e in keyed if k is not None]
        present.sort(key=lambda pair: pair[0], reverse=key.reverse)
        entries[:] = [e for _, e in present] + [e for k, e in keyed if k is None]
    return encode_sort_result(ResultCode.SUCCESS)
