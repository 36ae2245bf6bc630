"""Chaining: the referral list (Exchange Server's "LDAP referral list") and
the chasing of our own referrals (slapo-chain).

- Not chained at all: searches with ManageDsaIT, paged results,
  server-side sort or the sync request (RFC 4533: a replica holds what
  this server holds), and searches whose chaining behavior control asks for
  referrals (draft-sermersheim-ldap-chaining §3) — which every search
  certdir chains carries, so a search is never chained twice.
- Chasing (`referral.chase: true`, or a chaining behavior control asking
  for chaining): a referral answering the search (the base at or below a
  referral object, or the default referral) and the continuation
  references of the search are followed by certdir itself
  (`Peers.chase`); the entries found replace them. A referral or reference
  that no server answers is returned as it was.
- The referral list: a search under our naming context (with
  `referral.outside_suffix`, any base but the root DSE and the subschema
  subentry) that finds no entry, here or by chasing, and ends with success
  or noSuchObject (or, outside the naming context, the default referral),
  goes to the peers of `referral.list` (`directory.chaining.peers`).
  `mode: first` returns the entries of the first peer that found any,
  `merge` every peer's, `refer` no entries but one continuation reference
  per peer that serves the search (RFC 4511 §4.5.3), with the base mapped
  to the peer's and an explicit scope.
- Entries from elsewhere are searched as ours are: the filter, access and
  the size and time limits of this server and this requester apply, and
  the attribute selection is ours (`directory.ops.visibility`). Any entry
  returned makes a miss (noSuchObject, a referral) a success; none leaves
  the local result as it was.
- The local search runs first. Without chasing, its replies go out as they
  come once it finds an entry; until then they are held, on later reactor
  turns when it ticks, so a miss is known before any peer is asked. When
  chasing, its replies are held to its end (at most the size limit's
  entries) and the references followed then. Nothing waits on the
  reactor: the other servers answer through Deferreds.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed

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
from directory.protocol.sync import SYNC_REQUEST
from directory.selection import encode_entry

if TYPE_CHECKING:
    from directory.chaining.peers import Answer, Peers

NOT_CHAINED = (MANAGE_DSA_IT, PAGED_RESULTS, SORT_REQUEST, SYNC_REQUEST)
MISSES = (ResultCode.SUCCESS, ResultCode.NO_SUCH_OBJECT)
ENTRIES = (EncodedSearchResultEntry, SearchResultEntry)


def overlay(handler: Handler) -> Handler:
    def chain(op: Operation) -> Outcome:
        peers = op.dsa.peers
        # Most servers list no peer and chase nothing: one look, no more, per search.
        if peers is None or not isinstance(op.request, SearchRequest) or (
                peers.idle and CHAINING_BEHAVIOR not in op.controls):
            return handler(op)
        chase = _chases(op, peers)
        listed = _listed(op, peers)
        if not (chase or listed):
            return handler(op)
        try:
            outcome = handler(op)
        except LDAPError as e:
            final = Reply(SearchResultDone(Result(e.code, e.matched, e.message, e.referrals)),
                          e.controls)
            if chase and e.code == ResultCode.REFERRAL:
                # The referral is chased as a reference; answered, the search succeeded.
                return _chased(op, peers, [], final, [e.referrals], listed, referred=True)
            if not (listed and _missed(op, e.code)):
                raise
            return _after_miss(op, peers, [], final)
        return _local_first(op, peers, outcome, chase, listed)

    return chain


def _unchained(op: Operation) -> bool:
    base = op.parsed
    if base is None or isinstance(base, LDAPError) or base == op.dsa.subschema_dn:
        return True
    if any(oid in op.controls for oid in NOT_CHAINED):
        return True
    behavior = op.controls.get(CHAINING_BEHAVIOR)
    return behavior is not None and behavior.refers


def _chases(op: Operation, peers: Peers) -> bool:
    behavior = op.controls.get(CHAINING_BEHAVIOR)
    asked = peers.settings.chase or (behavior is not None and behavior.chains)
    return asked and not _unchained(op)


def _listed(op: Operation, peers: Peers) -> bool:
    if not peers.clients or _unchained(op):
        return False
    base = op.target
    request = op.request
    assert isinstance(request, SearchRequest)
    if op.dsa.in_naming_context(base):
        return True
    return peers.settings.outside_suffix and (bool(base) or request.scope != Scope.BASE)


def _missed(op: Operation, code: ResultCode) -> bool:
    return code in MISSES or (code == ResultCode.REFERRAL
                              and not op.dsa.in_naming_context(op.target))


def _local_first(op: Operation, peers: Peers, outcome: Outcome, chase: bool,
                 listed: bool) -> Deferred[Replies]:
    """The local replies, and what the chased references and the peers add."""
    if isinstance(outcome, Deferred):
        return outcome.addCallback(
            lambda replies: _local_first(op, peers, replies, chase, listed))
    result: Deferred[Replies] = Deferred()
    replies = iter(outcome)
    held: list[Reply] = []
    references: list[tuple[str, ...]] = []

    def step() -> None:
        try:
            for item in replies:
                if isinstance(item, Tick):
                    peers.reactor.callLater(0, step)
                    return
                if isinstance(item.op, ENTRIES) and not chase:
                    result.callback(itertools.chain(held, [item], replies))
                    return
                if isinstance(item.op, SearchResultReference) and chase:
                    references.append(item.op.uris)
                    continue
                if isinstance(item.op, SearchResultDone):
                    _chased(op, peers, held, item, references, listed).chainDeferred(result)
                    return
                held.append(item)
        except Exception:
            result.errback()

    step()
    return result


def _chased(op: Operation, peers: Peers, held: list[Reply], final: Reply,
            references: list[tuple[str, ...]], listed: bool,
            referred: bool = False) -> Deferred[Replies]:
    """Follow `references` (each a set of alternative URLs), then, on a miss,
    ask the referral list. `referred`: the one reference is the referral
    `final` answers with."""
    request = op.request
    assert isinstance(request, SearchRequest)
    limit = size_limit_of(op, request)
    seconds = _seconds(op, request)
    chased = [peers.chase(uris, request, limit, seconds) for uris in references]
    found: list[Answer] = []
    kept: list[Reply] = []

    def gathered(index: int) -> Deferred[Replies]:
        if index < len(chased):
            return chased[index].addCallback(one, index)
        end = Reply(SearchResultDone(SUCCESS)) if referred and found else final
        replies = _answer(op, held, end, [e for answer in found for e in answer], limit)
        if not op.entries and listed and _missed(op, _code(final)):
            return _after_miss(op, peers, held + kept, final)
        return succeed([*kept, *replies])

    def one(answer: Answer | None, index: int) -> Deferred[Replies]:
        if answer is not None:
            found.append(answer)
        elif not referred:
            kept.append(Reply(SearchResultReference(references[index])))
        return gathered(index + 1)

    return gathered(0)


def _code(final: Reply) -> ResultCode:
    done = final.op
    assert isinstance(done, SearchResultDone)
    return done.result.code


def _seconds(op: Operation, request: SearchRequest) -> float:
    deadline = deadline_of(op, request)
    return math.inf if deadline is None else deadline - time.monotonic()


def _after_miss(op: Operation, peers: Peers, held: list[Reply],
                final: Reply) -> Deferred[Replies]:
    request = op.request
    assert isinstance(request, SearchRequest)
    base = op.target
    if peers.settings.mode == "refer":
        urls = peers.references(base, request.scope)
        if not urls:
            return succeed([*held, final])
        return succeed([*held, *(Reply(SearchResultReference((url,))) for url in urls),
                        Reply(SearchResultDone(SUCCESS))])
    limit = size_limit_of(op, request)
    seconds = _seconds(op, request)
    if seconds <= 0:
        return succeed([*held, final])
    d = peers.search(request, base, limit, seconds)
    return d.addCallback(lambda entries: _answer(op, held, final, entries, limit))


def _answer(op: Operation, held: list[Reply], final: Reply, entries: Answer,
            limit: int) -> Replies:
    """The held replies, then the other servers' entries as this requester
    may see them, under our limits, then the final result."""
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
    code = _code(final)
    found = op.entries and (code in MISSES or code == ResultCode.REFERRAL)
    replies.append(Reply(SearchResultDone(SUCCESS)) if found else final)
    return replies
