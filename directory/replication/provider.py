"""The syncrepl provider (RFC 4533 §3): a search with the Sync Request control.

- refreshOnly and refreshAndPersist, the control critical or not. A cookie
  that does not read as OpenLDAP's (`directory.protocol.sync.Cookie`) is
  protocolError (2). The search is the client's: its base, scope, filter,
  attribute selection, access rules and size limit (for the refresh).
- Refresh without a cookie is the present phase (§3.3.1): every entry in
  scope matching the filter, with a Sync State add and its attributes
  (when there is a cookie, see below: only if it changed since), else
  present with none; it ends with
  refreshDeletes FALSE, so the consumer deletes what it was not sent.
- A cookie with CSNs that the delete log (`directory.replication.deletes`)
  cannot serve, pruned past it, cannot be followed incrementally: with
  reloadHint FALSE (the default, python-ldap's) the answer is
  e-syncRefreshRequired (4096) with no entries and no cookie, so the
  consumer asks again without one (§3.3.2 c, §3.8); with reloadHint TRUE
  (slapd's consumers) it is the present phase above (§3.3.2 b). A cookie
  without CSNs is the initial state: the present phase (§3.1).
- Refresh from a cookie the log serves is the delete phase (§3.3.2): the
  entries in scope whose entryCSN is newer than the cookie's CSN of their
  server id, with a Sync State add; then, as one Sync Info syncIdSet with
  refreshDeletes TRUE, the deletes since the cookie and the entries that
  changed since and are not in the content now (the filter no longer
  matches, a rename took them out of the base; only entries the requester
  may read and the consumer may hold), as slapo-syncprov's session log
  replay does; it ends with refreshDeletes TRUE.
- What the consumer may hold: after a present phase, exactly what this
  search sent it (its refreshDeletes FALSE made the consumer drop the
  rest); after a delete phase, that and every entry created no later than
  the cookie's newest CSN (createTimestamp counts whole seconds: one of the
  cookie's second may be held). An entry created later and never sent is
  never told as a delete.
- refreshOnly ends with the Sync Done control on searchResultDone;
  refreshAndPersist with a Sync Info refreshPresent or refreshDelete
  (refreshDone TRUE) and goes on to persist (§3.4): after every commit
  (this process's as it is acknowledged, any other's `DSA.refresh` finds,
  looked for every `POLL_SECONDS`) a pass sends what changed since the last
  cookie: entries with a Sync State add (new) or modify (changed; a rename
  is a modify of the new DN, same entryUUID), and as an entry with no
  attributes and a Sync State delete: the deletes whose DN was in scope,
  the entries renamed out of scope (the old DN), and those in scope that
  a change took out of the content (the DN; only entries the requester
  may read and the consumer may hold, see above). What left the content
  is told once, until it comes back; an entry told as gone is sent again
  whenever a pass finds it in the content, whatever its CSN. Then a Sync
  Info newcookie. Continuation references come with the refresh only.
- A pass is not a snapshot: it starts with `DSA.refresh`, so its cached
  entries agree with the delete log it reads then, and an entry a commit
  changed after the scan of the content passed it, found by the scan of
  everything changed in scope, is judged in or out of the content by that
  reading of it (`search.content_test`), never told as gone for missing
  from the first.
- What changed is found by the entryCSN index (`After` a cookie's oldest
  CSN; every entry when the cookie lacks a server id of contextCSN), so a
  pass or a delete phase reads the entries changed since, not every entry
  in scope; the present phase alone reads the whole scope.
- The cookie names, per server id, the newest CSN the refresh or pass
  saw, never less than the cookie it came from; the client's rid comes
  back in it. When commits came while a pass ran (`DSA.refresh` at its
  end tells), only CSNs older than its fence, `FENCE_SECONDS` before it
  started, count: a change committed meanwhile among entries it had looked
  at already is newer than the fence (no transaction takes
  `FENCE_SECONDS` from its stamp to its commit), so the next pass finds
  it. Changes newer than the fence may then come again in a later refresh;
  a persist search never sends one entryUUID with the same entryCSN twice.
- A cookie is sent only at the end of a refresh or a pass: a consumer that
  loses the connection midway asks again from the cookie before it.
- A refreshAndPersist search beyond `limits.max_persist_searches` on its
  connection or `limits.max_persist_searches_total` is refused with busy
  (51) before its refresh (`directory.replication.persisting`).
- A persist search ends with Abandon, Cancel (canceled), unbind or the
  connection's end; every pass streams with ticks as a search does, and
  between passes it takes no turns (`Wait`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred

from directory.acl.rights import Rights
from directory.backend import After
from directory.entry import Entry
from directory.operation import TICK, Operation, Replies, Reply, Tick, Wait
from directory.ops.search import (
    REACHES,
    TICK_EVERY,
    content_test,
    entry_reply,
    matches,
    size_limit_of,
)
from directory.ops.visibility import view_of
from directory.protocol.dn import DN
from directory.protocol.messages import (
    SUCCESS,
    Result,
    SearchRequest,
    SearchResultDone,
    SearchResultEntry,
)
from directory.protocol.results import LDAPError, ProtocolError, ResultCode
from directory.protocol.sync import (
    SYNC_REQUEST,
    Cookie,
    Mode,
    NewCookie,
    RefreshDelete,
    RefreshPresent,
    State,
    SyncDone,
    SyncIdSet,
    SyncRequest,
    SyncState,
    csn_sid,
    info_message,
)
from directory.replication import context, deletes
from directory.replication.deletes import Deleted, entry_uuid

POLL_SECONDS = 1.0
FENCE_SECONDS = 60
# A CSN's time part, YYYYmmddHHMMSS.ffffffZ.
STAMP = 22


@dataclass
class Progress:
    """What the consumer has been told: per server id, the newest CSN it has
    of that server's changes."""

    rid: int | None
    newest: dict[int, str]
    fence: str = ""
    # The first pass's fence, as a CSN: what a persist pass asks the delete
    # log from while the cookie holds no CSN.
    floor: str = ""
    # entryUUID -> entryCSN sent that the cookie does not cover yet.
    sent: dict[bytes, str] = field(default_factory=dict)
    # The entries told as gone from the content (deleted, or changed so
    # that it no longer holds them), told again only after they come back.
    outside: set[bytes] = field(default_factory=set)
    # The entries this search sent as in the content, since told gone or not.
    held: set[bytes] = field(default_factory=set)
    # The createTimestamp (YYYYmmddHHMMSS) up to which the consumer may hold
    # entries it was not sent here: the cookie's newest CSN after a delete
    # phase; "" after a present phase.
    created_by: str = ""
    # This pass's newest CSN per server id: of all it saw, of those before the fence.
    seen: dict[int, str] = field(default_factory=dict)
    fenced: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, cookie: Cookie | None) -> Progress:
        if cookie is None:
            return cls(None, {})
        return cls(cookie.rid, {csn_sid(c): c for c in cookie.csns})

    def start(self, now: dt.datetime) -> Cookie:
        """A new pass: its fence, and the cookie of what is not new to it."""
        self.fence = (now - dt.timedelta(seconds=FENCE_SECONDS)).strftime("%Y%m%d%H%M%S.%fZ")
        self.floor = self.floor or f"{self.fence}#000000#000#000000"
        self.seen, self.fenced = {}, {}
        since = self.cookie()
        self.sent = {u: c for u, c in self.sent.items() if _newer(since, c)}
        return since

    def note(self, csn: str) -> None:
        if not csn:
            return
        sid = csn_sid(csn)
        if csn > self.seen.get(sid, ""):
            self.seen[sid] = csn
        if csn[:STAMP] <= self.fence and csn > self.fenced.get(sid, ""):
            self.fenced[sid] = csn

    def finish(self, overlapped: bool) -> None:
        """The pass is over; `overlapped`: commits came while it ran, so only
        what is older than its fence is surely complete."""
        for sid, csn in (self.fenced if overlapped else self.seen).items():
            if csn > self.newest.get(sid, ""):
                self.newest[sid] = csn

    def may_hold(self, change: Change) -> bool:
        """Whether the consumer may hold this entry that left the content."""
        if change.uuid in self.held:
            return True
        created = (change.entry.first("createtimestamp") or b"").decode()[:14]
        return change.uuid not in self.outside and created <= self.created_by

    def first_time(self, uuid: bytes, csn: str) -> bool:
        """Whether this change was not sent before; from now on it was."""
        if self.sent.get(uuid) == csn:
            return False
        self.sent[uuid] = csn
        return True

    def cookie(self) -> Cookie:
        return Cookie(self.rid, None, tuple(self.newest[s] for s in sorted(self.newest)))


def _finish(op: Operation, progress: Progress, generation: int) -> None:
    op.dsa.refresh()
    progress.finish(op.dsa.commits.generation != generation)


def _newer(since: Cookie, csn: str) -> bool:
    if not csn:
        return False
    seen = since.csn_for(csn_sid(csn))
    return seen is None or csn > seen


def _csn(entry: Entry) -> str:
    value = entry.first("entrycsn")
    return "" if value is None else value.decode()


def _stated(reply: Reply, state: SyncState) -> Reply:
    return Reply(reply.op, (*reply.controls, state.to_control()))


def _ended(error: LDAPError) -> Reply:
    return Reply(SearchResultDone(Result(error.code, error.matched, error.message,
                                         error.referrals)))


def handle(op: Operation) -> Replies:
    request = op.request
    assert isinstance(request, SearchRequest)
    sync: SyncRequest = op.controls[SYNC_REQUEST]
    try:
        cookie = Cookie.parse(sync.cookie) if sync.cookie else None
    except ProtocolError as e:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"sync cookie: {e.message}") from None
    base = op.target
    dsa = op.dsa
    if sync.mode == Mode.REFRESH_AND_PERSIST:
        dsa.persist_searches.admit(op)
    generation = dsa.commits.generation
    deleted = None
    if cookie is not None:
        with dsa.backend.reading() as records:
            deleted = deletes.since(records, cookie)
        if deleted is None and cookie.csns and not sync.reload_hint:
            raise LDAPError(ResultCode.E_SYNC_REFRESH_REQUIRED,
                            "the delete log no longer reaches back to the cookie")
    progress = Progress.of(cookie)
    if deleted is not None:
        progress.created_by = max(cookie.csns, default="")[:14] if cookie else ""
    refresh = _refresh(op, request, base, progress, deleted, generation)
    # The base is checked (and refused) now, before any reply.
    first = next(refresh)
    return _sync(op, request, base, sync.mode, progress, deleted is None, generation,
                 first, refresh)


def _sync(op: Operation, request: SearchRequest, base: DN, mode: Mode, progress: Progress,
          present: bool, generation: int, first: Reply | Tick,
          refresh: Iterator[Reply | Tick]) -> Iterator[Reply | Tick]:
    try:
        yield first
        yield from refresh
    except LDAPError as e:
        yield _ended(e)
        return
    cookie = progress.cookie().encode()
    if mode == Mode.REFRESH_ONLY:
        yield Reply(SearchResultDone(SUCCESS),
                    (SyncDone(cookie, refresh_deletes=not present).to_control(),))
        return
    yield Reply(info_message(RefreshPresent(cookie) if present else RefreshDelete(cookie)))
    yield from _persist(op, request, base, progress, generation)


def _refresh(op: Operation, request: SearchRequest, base: DN, progress: Progress,
             deleted: list[Deleted] | None, generation: int) -> Iterator[Reply | Tick]:
    since = progress.start(op.dsa.now())
    if deleted is None:
        yield from _present(op, request, base, progress, since)
    else:
        yield from _delete_phase(op, request, base, progress, since, deleted)
    _finish(op, progress, generation)


def _present(op: Operation, request: SearchRequest, base: DN, progress: Progress,
             since: Cookie) -> Iterator[Reply | Tick]:
    limit = size_limit_of(op, request)
    found = matches(op, request, base)
    yield TICK
    for item in found:
        if not isinstance(item, Entry):
            yield item
            continue
        csn = _csn(item)
        progress.note(csn)
        uuid = entry_uuid(item)
        if uuid is None:
            continue
        if limit and op.entries >= limit:
            raise LDAPError(ResultCode.SIZE_LIMIT_EXCEEDED, "size limit exceeded")
        op.entries += 1
        progress.held.add(uuid)
        if _newer(since, csn) or not csn:
            progress.first_time(uuid, csn)
            yield _stated(entry_reply(op, request, item), SyncState(State.ADD, uuid))
        else:
            yield Reply(SearchResultEntry(str(item.dn), ()),
                        (SyncState(State.PRESENT, uuid).to_control(),))


def _delete_phase(op: Operation, request: SearchRequest, base: DN, progress: Progress,
                  since: Cookie, deleted: list[Deleted]) -> Iterator[Reply | Tick]:
    limit = size_limit_of(op, request)
    found = _changed(op, request, base, since, timed=True)
    yield TICK
    inside: set[bytes] = set()
    gone: dict[bytes, None] = {}
    for item in found:
        if not isinstance(item, Change):
            yield item
            continue
        progress.note(item.csn)
        progress.first_time(item.uuid, item.csn)
        if not item.inside:
            if progress.may_hold(item):
                gone[item.uuid] = None
                progress.outside.add(item.uuid)
            continue
        if limit and op.entries >= limit:
            raise LDAPError(ResultCode.SIZE_LIMIT_EXCEEDED, "size limit exceeded")
        op.entries += 1
        inside.add(item.uuid)
        progress.held.add(item.uuid)
        yield _stated(entry_reply(op, request, item.entry), SyncState(State.ADD, item.uuid))
    for left in deleted:
        progress.note(left.csn)
        if left.uuid not in inside:
            progress.first_time(left.uuid, left.csn)
            gone[left.uuid] = None
    if gone:
        yield Reply(info_message(SyncIdSet(tuple(gone), refresh_deletes=True)))


@dataclass(frozen=True, slots=True)
class Change:
    """An entry changed after the cookie; `inside`: in the search's content
    (in scope, matching, readable), else it may have left it."""
    entry: Entry
    uuid: bytes
    csn: str
    inside: bool


def _changed(op: Operation, request: SearchRequest, base: DN, since: Cookie,
             timed: bool) -> Iterator[Change | Reply | Tick]:
    """The entries in scope with an entryCSN newer than `since`, found by
    the entryCSN index, those of the content first; continuation references
    as the search gives them."""
    dsa = op.dsa
    bound = _bound(op, since)
    found: set[int] = set()
    for item in matches(op, request, base, timed, bound):
        if not isinstance(item, Entry):
            yield item
            continue
        found.add(item.id)
        change = _change(item, since, True)
        if change is not None:
            yield change
    view = view_of(op)
    holds = content_test(op, request, base)
    for looked, entry in enumerate(dsa.backend.search(base, request.scope, bound), 1):
        if looked % TICK_EVERY == 0:
            yield TICK
        if entry.id in found or "referral" in entry.object_classes or not view.allows(
                entry, Rights.READ):
            continue
        # Not among the matches: it left the content, or it changed after
        # the scan of the matches passed it (a commit between the two
        # scans); this reading of it says which.
        change = _change(entry, since, holds(entry))
        if change is not None:
            yield change


def _change(entry: Entry, since: Cookie, inside: bool) -> Change | None:
    """None for an entry not changed after `since`."""
    csn = _csn(entry)
    uuid = entry_uuid(entry)
    if uuid is None or not _newer(since, csn):
        return None
    return Change(entry, uuid, csn, inside)


def _bound(op: Operation, since: Cookie) -> After | None:
    """The entryCSN index range holding every CSN newer than `since`: after
    its oldest CSN; None (every entry) when it lacks a server id of
    contextCSN, all of whose changes are new to it."""
    with op.dsa.backend.reading() as records:
        sids = {csn_sid(value.decode()) for value in context.values(records)}
    if not since.csns or any(since.csn_for(sid) is None for sid in sids):
        return None
    return After("entrycsn", min(since.csns).encode())


def _persist(op: Operation, request: SearchRequest, base: DN, progress: Progress,
             generation: int) -> Iterator[Reply | Tick]:
    commits = op.dsa.commits
    ready: Deferred[None] | None = None
    told = progress.cookie()
    while True:
        if commits.generation == generation:
            if ready is None or ready.called:
                ready = commits.wait()
            yield Wait(ready, POLL_SECONDS)
            op.dsa.refresh()
            continue
        generation = commits.generation
        try:
            yield from _pass(op, request, base, progress)
            _finish(op, progress, generation)
        except LDAPError as e:
            yield _ended(e)
            return
        cookie = progress.cookie()
        if cookie != told:
            told = cookie
            yield Reply(info_message(NewCookie(cookie.encode())))


def _pass(op: Operation, request: SearchRequest, base: DN,
          progress: Progress) -> Iterator[Reply | Tick]:
    dsa = op.dsa
    # Entries cached before a commit not yet delivered would disagree with
    # the delete log and the index read next.
    dsa.refresh()
    since = progress.start(dsa.now())
    asked = since if since.csns else Cookie(csns=(progress.floor,))
    with dsa.backend.reading() as records:
        deleted = deletes.since(records, asked) or []
    inside: set[bytes] = set()
    for item in _changed(op, request, base, asked, timed=False):
        if isinstance(item, Tick):
            yield item
        if not isinstance(item, Change):
            continue
        progress.note(item.csn)
        if item.inside:
            inside.add(item.uuid)
            # Told as gone, the consumer no longer holds it: sent again,
            # whatever CSN it was told gone with.
            told_gone = item.uuid in progress.outside
            progress.outside.discard(item.uuid)
            progress.held.add(item.uuid)
            if progress.first_time(item.uuid, item.csn) or told_gone:
                yield _stated(entry_reply(op, request, item.entry),
                              SyncState(_state(item.entry), item.uuid))
        elif progress.may_hold(item):
            progress.first_time(item.uuid, item.csn)
            progress.outside.add(item.uuid)
            progress.held.discard(item.uuid)
            yield _deleted(str(item.entry.dn), item.uuid)
    reaches = REACHES[request.scope]
    for left in deleted:
        progress.note(left.csn)
        # Found in the content, maybe as a cached reading from before this
        # rename: the next pass sends the entry as it is, so the rename's CSN
        # must not count as sent.
        if (left.uuid in inside or left.uuid in progress.outside
                or not progress.first_time(left.uuid, left.csn)):
            continue
        dn = dsa.parse_dn(left.dn)
        if dn.is_descendant_of(base) and reaches(base, dn):
            progress.outside.add(left.uuid)
            progress.held.discard(left.uuid)
            yield _deleted(left.dn, left.uuid)


def _state(entry: Entry) -> State:
    same = entry.first("createtimestamp") == entry.first("modifytimestamp")
    return State.ADD if same else State.MODIFY


def _deleted(dn: str, uuid: bytes) -> Reply:
    return Reply(SearchResultEntry(dn, ()), (SyncState(State.DELETE, uuid).to_control(),))
