"""Chaining to the referral list (Exchange Server's "LDAP referral list").

- A search under our naming context (with `referral.outside_suffix`, any
  base but the root DSE and the subschema subentry) that finds no entry
  here, and ends with success or noSuchObject (or, outside the naming
  context, the default referral), goes to the peers of `referral.list`
  (`directory.chaining.peers`).
- `mode: first` returns the first peer's entries that found any, `merge`
  every peer's, `refer` no entries but one continuation reference per peer
  that serves the search (RFC 4511 §4.5.3), with the base mapped to the
  peer's and an explicit scope.
- The peers' entries are searched as ours are: the filter, access and the
  size and time limits of this server and this requester apply, and the
  attribute selection is ours (`directory.ops.visibility`). Any entry
  returned makes the result success; none leaves the local result as it was.
- Not chained: searches with ManageDsaIT, paged results or server-side
  sort, and searches whose chaining behavior control asks for referrals
  (draft-sermersheim-ldap-chaining §3) — which every chained search
  carries, so a search is never chained twice.
- The local search runs first and its replies go out as they come once it
  finds an entry; until then they are held, on later reactor turns when it
  ticks, so a miss is known before any peer is asked. Nothing waits on the
  reactor: the peers answer through Deferreds.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from directory.acl.identity import identity_of
from directory.acl.view import View
from directory.operation import Handler, Operation, Outcome, Replies, Reply, Tick
from directory.ops.search import deadline_of, size_limit_of
from directory.ops.visibility import hidden_in_result, search_test
from directory.protocol.controls import (
    CHAINING_BEHAVIOR,
    MANAGE_DSA_IT,
    PAGED_RESULTS,
    SORT_REQUEST,
)
from directory.protocol.messages import (
    SUCCESS,
    EncodedSearchResultEntry,
    Result,
    Scope,
    SearchRequest,
    SearchResultDone,
    SearchResultEntry,
    SearchResultReference,
)
from directory.protocol.results import LDAPError, ResultCode
from directory.selection import encode_entry

if TYPE_CHECKING:
    from directory.chaining.peers import Answer, Peers

NOT_CHAINED = (MANAGE_DSA_IT, PAGED_RESULTS, SORT_REQUEST)
MISSES = (ResultCode.SUCCESS, ResultCode.NO_SUCH_OBJECT)
ENTRIES = (EncodedSearchResultEntry, SearchResultEntry)


def overlay(handler: Handler) -> Handler:
    def chain(op: Operation) -> Outcome:
        peers = op.dsa.peers
        if peers is None or not _chainable(op, peers):
            return handler(op)
        try:
            outcome = handler(op)
        except LDAPError as e:
            if not _missed(op, e.code):
                raise
            final = Reply(SearchResultDone(Result(e.code, e.matched, e.message, e.referrals)),
                          e.controls)
            return _after_miss(op, peers, [], final)
        return _local_first(op, peers, outcome)

    return chain


def _chainable(op: Operation, peers: Peers) -> bool:
    request = op.request
    base = op.parsed
    if not isinstance(request, SearchRequest) or not peers.clients or base is None or (
            isinstance(base, LDAPError)):
        return False
    if any(oid in op.controls for oid in NOT_CHAINED):
        return False
    behavior = op.controls.get(CHAINING_BEHAVIOR)
    if behavior is not None and behavior.refers:
        return False
    dsa = op.dsa
    if base == dsa.subschema_dn:
        return False
    if dsa.in_naming_context(base):
        return True
    return peers.settings.outside_suffix and (bool(base) or request.scope != Scope.BASE)


def _missed(op: Operation, code: ResultCode) -> bool:
    return code in MISSES or (code == ResultCode.REFERRAL
                              and not op.dsa.in_naming_context(op.target))


def _local_first(op: Operation, peers: Peers, outcome: Outcome) -> Deferred[Replies]:
    """The local replies as they come once one is an entry; after a miss, the
    peers' answer."""
    if isinstance(outcome, Deferred):
        return outcome.addCallback(lambda replies: _local_first(op, peers, replies))
    result: Deferred[Replies] = Deferred()
    replies = iter(outcome)
    held: list[Reply] = []

    def step() -> None:
        try:
            for item in replies:
                if isinstance(item, Tick):
                    peers.reactor.callLater(0, step)
                    return
                if isinstance(item.op, ENTRIES):
                    result.callback(itertools.chain(held, [item], replies))
                    return
                if isinstance(item.op, SearchResultDone):
                    if _missed(op, item.op.result.code):
                        d = _after_miss(op, peers, held, item)
                        d.chainDeferred(result)
                    else:
                        result.callback([*held, item])
                    return
                held.append(item)
        except Exception:
            result.errback()

    step()
    return result


def _after_miss(op: Operation, peers: Peers, held: list[Reply],
                final: Reply) -> Deferred[Replies]:
    request = op.request
    assert isinstance(request, SearchRequest)
    base = op.target
    if peers.settings.mode == "refer":
        urls = peers.references(base, request.scope)
        if not urls:
            return _now([*held, final])
        return _now([*held, *(Reply(SearchResultReference((url,))) for url in urls),
                     Reply(SearchResultDone(SUCCESS))])
    limit = size_limit_of(op, request)
    deadline = deadline_of(op, request)
    seconds = math.inf if deadline is None else deadline - time.monotonic()
    if seconds <= 0:
        return _now([*held, final])
    d = peers.search(request, base, limit, seconds)
    return d.addCallback(lambda entries: _answer(op, held, final, entries, limit))


def _answer(op: Operation, held: list[Reply], final: Reply, entries: Answer,
            limit: int) -> Replies:
    """The peers' entries as this requester may see them, under our limits."""
    request = op.request
    assert isinstance(request, SearchRequest) and op.filter is not None
    assert op.selection is not None
    dsa = op.dsa
    view = op.access or View(dsa.acl, identity_of(op), dsa.backend.get)
    test = search_test(dsa.schema, view, op.filter, False)
    replies = list(held)
    for entry in entries:
        if test(entry) is not True:
            continue
        if limit and op.entries >= limit:
            replies.append(Reply(SearchResultDone(Result(ResultCode.SIZE_LIMIT_EXCEEDED, "",
                                                         "size limit exceeded"))))
            return replies
        op.entries += 1
        hidden = hidden_in_result(view, entry, None, ())
        body = encode_entry(dsa.schema, entry, op.selection, request.types_only, hidden, {})
        replies.append(Reply(EncodedSearchResultEntry(body)))
    replies.append(final if not op.entries else Reply(SearchResultDone(SUCCESS)))
    return replies


def _now(replies: Iterable[Reply]) -> Deferred[Replies]:
    d: Deferred[Replies] = Deferred()
    d.callback(list(replies))
    return d
