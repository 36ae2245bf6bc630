"""The syncrepl provider (RFC 4533 §3): a search with the Sync Request control.

- refreshOnly and refreshAndPersist, the control critical or not. A cookie
  that does not read as OpenLDAP's (`directory.protocol.sync.Cookie`) is
  protocolError (2). The search is the client's: its base, scope, filter,
  attribute selection, access rules and size limit (for the refresh).
- Refresh without a cookie, or from a cookie the delete log cannot serve
  (`directory.replication.deletes`), is the present phase (§3.3.1): every
  entry in scope matching the filter, with a Sync State add and its
  attributes when it changed since the cookie, else present with none; it
  ends with refreshDeletes FALSE, so the consumer deletes what it was not
  sent.
- Refresh from a cookie is the delete phase (§3.3.2): the entries whose
  entryCSN is newer than the cookie's CSN of their server id, with a Sync
  State add; then the deletes since the cookie, as one Sync Info syncIdSet
  with refreshDeletes TRUE; it ends with refreshDeletes TRUE.
- refreshOnly ends with the Sync Done control on searchResultDone;
  refreshAndPersist with a Sync Info refreshPresent or refreshDelete
  (refreshDone TRUE) and goes on to persist (§3.4): after every commit
  (this process's as it is acknowledged, any other's `DSA.refresh` finds,
  looked for every `POLL_SECONDS`) a pass sends what changed since the last
  cookie: entries with a Sync State add (new) or modify (changed; a rename
  is a modify of the new DN, same entryUUID), deletes in scope as an entry
  with the old DN, no attributes and a Sync State delete; then a Sync Info
  newcookie. Continuation references come with the refresh only. Each pass
  looks at every entry in scope (entryCSN is not indexed).
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

from directory.entry import Entry
from directory.operation import TICK, Operation, Replies, Reply, Tick, Wait
from directory.ops.search import REACHES, entry_reply, matches, size_limit_of
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
from directory.replication import deletes
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
    progress = Progress.of(cookie)
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
    present = deleted is None
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
        changed = _newer(since, csn) or not csn
        if uuid is None or not (changed or present):
            continue
        if limit and op.entries >= limit:
            raise LDAPError(ResultCode.SIZE_LIMIT_EXCEEDED, "size limit exceeded")
        op.entries += 1
        if changed:
            progress.first_time(uuid, csn)
            yield _stated(entry_reply(op, request, item), SyncState(State.ADD, uuid))
        else:
            yield Reply(SearchResultEntry(str(item.dn), ()),
                        (SyncState(State.PRESENT, uuid).to_control(),))
    if deleted:
        for gone in deleted:
            progress.note(gone.csn)
            progress.first_time(gone.uuid, gone.csn)
        yield Reply(info_message(SyncIdSet(tuple(g.uuid for g in deleted),
                                           refresh_deletes=True)))
    _finish(op, progress, generation)


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
    since = progress.start(dsa.now())
    asked = since if since.csns else Cookie(csns=(progress.floor,))
    with dsa.backend.reading() as records:
        deleted = deletes.since(records, asked) or []
    for item in matches(op, request, base, timed=False):
        if isinstance(item, Tick):
            yield item
        if not isinstance(item, Entry):
            continue
        csn = _csn(item)
        progress.note(csn)
        uuid = entry_uuid(item)
        if uuid is None or not _newer(since, csn) or not progress.first_time(uuid, csn):
            continue
        state = State.ADD if item.first("createtimestamp") == item.first(
            "modifytimestamp") else State.MODIFY
        yield _stated(entry_reply(op, request, item), SyncState(state, uuid))
    reaches = REACHES[request.scope]
    for gone in deleted:
        progress.note(gone.csn)
        if not progress.first_time(gone.uuid, gone.csn):
            continue
        dn = dsa.parse_dn(gone.dn)
        if dn.is_descendant_of(base) and reaches(base, dn):
            yield Reply(SearchResultEntry(gone.dn, ()),
                        (SyncState(State.DELETE, gone.uuid).to_control(),))
