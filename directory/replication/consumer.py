"""The syncrepl consumer (RFC 4533): certdir as a read-only replica, or as
one node of a multi-provider pair (`directory.replication.apply` says how
the newer change wins).

- It runs in the server's first worker, on the reactor. A session opens a
  connection to the provider (`directory.replication.connection`) and
  sends the configured search with the Sync Request control (refreshOnly
  or refreshAndPersist) and the cookie the last committed batch stored;
  without one, a cookie naming only the rid (as slapd's consumer sends),
  and the provider sends everything (a full refresh).
- What arrives becomes changes (`directory.replication.apply`) handed to
  the writer in batches, one batch at a time and in the order they came,
  each with the newest cookie it covers: the reactor never waits for the
  database. While `MAX_PENDING` changes wait, the connection stops reading.
- The present phase (RFC 4533 §3.3.1): every entry named during a refresh
  (sent in full, as present, or in a syncIdSet without refreshDeletes) is
  collected; when the phase ends (a refreshPresent Sync Info, or a Sync
  Done without refreshDeletes) the replicated entries not named are
  deleted. A delete phase deletes what it names only, but a refresh asked
  without a cookie is the provider's whole content whichever phase it
  ends with (slapd's syncprov ends one with refreshDeletes): the entries a
  session killed before its first cookie committed, that the provider
  deleted meanwhile, go when it ends.
- refreshOnly: the next session starts `interval_s` after a refresh ends.
  refreshAndPersist: once refreshDone, the search goes on and each change
  comes as it is made, with its cookie; a provider that ends the search
  is asked again after the first retry step.
- e-syncRefreshRequired (4096, RFC 4533 §3.2): the next session starts at
  once without a cookie.
- Any other failure (the provider unreachable, a bind refused, the
  connection lost, a result other than success, a batch the writer
  refuses) ends the session; the next waits what `retry` gives for the
  failures in a row, and there is none once the schedule has run out. A
  refresh that completes resets the count.
- Each refresh logs, once its changes are committed, how many entries the
  provider sent in full, named present and how many were deleted here: a
  restart with a cookie shows it resumed instead of starting over.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from twisted.internet import ssl
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from directory.config import Consumer as ConsumerConfig
from directory.dsa import DSA
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import (
    Control,
    Deref,
    IntermediateResponse,
    LDAPMessage,
    Result,
    SearchRequest,
    SearchResultDone,
    SearchResultEntry,
)
from directory.protocol.results import LDAPError, ResultCode
from directory.protocol.sync import (
    SYNC_DONE,
    SYNC_INFO,
    SYNC_STATE,
    Cookie,
    Mode,
    NewCookie,
    RefreshPresent,
    State,
    SyncDone,
    SyncIdSet,
    SyncInfo,
    SyncRequest,
    SyncState,
    decode_info,
)
from directory.replication import store
from directory.replication.apply import (
    Change,
    Checkpoint,
    Remove,
    RemoveAbsent,
    Upsert,
    apply,
    entry_of,
)
from directory.replication.connection import ProviderConnection, Refused, open_connection

log = logging.getLogger("certdir.replication")

MAX_PENDING = 4096
BATCH = 1024
MODES = {"refreshOnly": Mode.REFRESH_ONLY, "refreshAndPersist": Mode.REFRESH_AND_PERSIST}


class WriteFailed(Exception):
    """The writer refused a batch of the provider's changes."""


def _control(controls: Iterable[Control], oid: str) -> Control | None:
    return next((c for c in controls if c.oid == oid), None)


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw))


class _Refresh:
    """One sync search: what it has named present, what it has sent, its end."""

    def __init__(self, consumer: Consumer, complete: bool) -> None:
        self.consumer = consumer
        # Asked without a cookie: the provider sends all it holds, whichever
        # phase it names, so what it does not name is gone.
        self.complete = complete
        self.present: set[str] = set()
        self.refreshing = True
        self.sent = self.named = self.written = self.deleted = 0
        self.done: Deferred[Result] = Deferred()

    def receive(self, message: LDAPMessage) -> bool:
        op = message.op
        if isinstance(op, SearchResultEntry):
            self._entry(op, message.controls)
        elif isinstance(op, IntermediateResponse) and op.name == SYNC_INFO:
            self._info(decode_info(op.value))
        elif isinstance(op, SearchResultDone):
            self._done(op.result, message.controls)
            return True
        return False

    def fail(self, why: BaseException) -> None:
        if not self.done.called:
            self.done.errback(Failure(why))

    def _queue(self, change: Change) -> None:
        self.consumer.queue(self, change)

    def _checkpoint(self, cookie: bytes | None) -> None:
        if cookie is not None:
            self._queue(Checkpoint(cookie))

    def _entry(self, op: SearchResultEntry, controls: tuple[Control, ...]) -> None:
        control = _control(controls, SYNC_STATE)
        if control is None:
            log.warning("replication: %s: entry without a Sync State control: %s",
                        self.consumer.provider, op.dn)
            return
        state = SyncState.decode(control.value)
        entry_uuid = _uuid(state.entry_uuid)
        if state.state == State.DELETE:
            self._queue(Remove((entry_uuid,)))
        elif state.state == State.PRESENT:
            self.named += 1
            self.present.add(entry_uuid)
        else:
            self._upsert(entry_uuid, op)
        self._checkpoint(state.cookie)

    def _upsert(self, entry_uuid: str, op: SearchResultEntry) -> None:
        dsa = self.consumer.dsa
        try:
            dn = dsa.parse_dn(op.dn)
        except LDAPError as e:
            log.warning("replication: %s: entry not stored: %s", self.consumer.provider, e)
            return
        if not dsa.in_naming_context(dn):
            log.warning("replication: %s: %s is outside %s: not stored",
                        self.consumer.provider, dn, dsa.suffix)
            return
        self.sent += 1
        if self.refreshing:
            self.present.add(entry_uuid)
        self._queue(Upsert(entry_uuid, entry_of(dsa, dn, op.attributes, entry_uuid)))

    def _info(self, info: SyncInfo) -> None:
        if isinstance(info, NewCookie):
            self._checkpoint(info.cookie)
        elif isinstance(info, SyncIdSet):
            uuids = tuple(_uuid(u) for u in info.uuids)
            if info.refresh_deletes:
                self._queue(Remove(uuids))
            else:
                self.named += len(uuids)
                self.present.update(uuids)
            self._checkpoint(info.cookie)
        else:
            if isinstance(info, RefreshPresent) or self.complete:
                self._queue(RemoveAbsent(frozenset(self.present)))
            self.present = set()
            self._checkpoint(info.cookie)
            if info.refresh_done:
                self._refreshed()

    def _done(self, result: Result, controls: tuple[Control, ...]) -> None:
        control = _control(controls, SYNC_DONE)
        if result.code == ResultCode.SUCCESS and control is not None:
            done = SyncDone.decode(control.value)
            if self.refreshing and (self.complete or not done.refresh_deletes):
                self._queue(RemoveAbsent(frozenset(self.present)))
            self._checkpoint(done.cookie)
            self._refreshed()
        if not self.done.called:
            self.done.callback(result)

    def _refreshed(self) -> None:
        self.refreshing = False
        self.present = set()
        self.consumer.refreshed(self)


class Consumer:
    def __init__(self, dsa: DSA, config: ConsumerConfig, reactor: Any) -> None:
        self.dsa = dsa
        self.config = config
        self.reactor = reactor
        peer = config.provider
        self.provider = peer.url
        # Read once, at start-up: no file is read on the reactor while serving.
        self._password = (peer.password_file.read_bytes().strip()
                          if peer.password_file is not None else b"")
        self._trust = (ssl.Certificate.loadPEM(peer.ca_file.read_bytes())
                       if peer.ca_file is not None else None)
        self._search = SearchRequest(config.base, config.scope, Deref.NEVER, 0, 0, False,
                                     parse_filter(config.filter), config.attributes)
        self._failures = 0
        self._reload = False
        self._stopped = False
        self._next: Any = None
        self._connection: ProviderConnection | None = None
        self._refresh: _Refresh | None = None
        self._pending: list[Change] = []
        self._writing = False
        self._paused = False
        self._drained: list[Deferred[None]] = []

    def start(self) -> None:
        self._schedule(0)

    def stop(self) -> None:
        self._stopped = True
        if self._next is not None and self._next.active():
            self._next.cancel()
        if self._connection is not None:
            self._connection.unbind()

    def _schedule(self, seconds: float) -> None:
        if not self._stopped:
            self._next = self.reactor.callLater(seconds, self._run)

    def _run(self) -> None:
        self._next = None
        Deferred.fromCoroutine(self._session()).addCallbacks(self._schedule, self._failed)

    async def _session(self) -> float:
        """One session; how long to wait before the next."""
        cookie = None if self._reload else self._stored_cookie()
        connection = await open_connection(self.config.provider, self._password,
                                           self._trust, self.reactor)
        if self._stopped:
            connection.unbind()
            return 0
        self._connection = connection
        refresh = self._refresh = _Refresh(self, complete=cookie is None)
        connection.lost.addCallback(refresh.fail)
        # Without a stored cookie, one naming only the rid, as slapd's consumer sends.
        request = SyncRequest(MODES[self.config.type],
                              cookie or Cookie(rid=self.config.rid).encode())
        connection.send(self._search, refresh.receive, (request.to_control(),))
        result = await refresh.done
        await self._all_written()
        connection.unbind()
        if result.code == ResultCode.E_SYNC_REFRESH_REQUIRED:
            log.info("replication: %s: refresh required: starting again without a cookie",
                     self.provider)
            self._reload = True
            return 0
        if result.code != ResultCode.SUCCESS:
            raise Refused(f"sync search: {result.code.name} {result.message}")
        if self.config.type == "refreshAndPersist":
            log.info("replication: %s ended the persistent search", self.provider)
            return self.config.retry_after(1) or 0
        return self.config.interval_s

    def _failed(self, failure: Failure) -> None:
        self._refresh = None
        self._pending.clear()
        self._paused = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._stopped:
            return
        self._failures += 1
        delay = self.config.retry_after(self._failures)
        why = failure.getErrorMessage() or repr(failure.value)
        if delay is None:
            log.error("replication: %s: %s; no retry left, replication stopped",
                      self.provider, why)
            return
        log.warning("replication: %s: %s; retrying in %d s", self.provider, why, delay)
        self._schedule(delay)

    def _stored_cookie(self) -> bytes | None:
        self.dsa.refresh()
        with self.dsa.backend.reading() as records:
            return store.cookie(records, self.config.rid)

    def refreshed(self, refresh: _Refresh) -> None:
        self._failures = 0
        self._reload = False

        def report(_: None) -> None:
            log.info("replication: refresh from %s done: %d entries sent in full, "
                     "%d named present, %d deleted", self.provider, refresh.sent,
                     refresh.named, refresh.deleted)
            refresh.sent = refresh.named = refresh.deleted = 0

        self._all_written().addCallback(report)

    def queue(self, refresh: _Refresh, change: Change) -> None:
        if refresh is not self._refresh:
            return
        self._pending.append(change)
        if len(self._pending) >= MAX_PENDING and not self._paused and self._connection:
            self._paused = True
            self._connection.transport.pauseProducing()  # type: ignore[union-attr]
        self._flush()

    def _flush(self) -> None:
        if self._writing:
            return
        if not self._pending:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)
            return
        batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
        refresh = self._refresh
        rid = self.config.rid
        self._writing = True
        d: Deferred[tuple[int, int]] = self.dsa.write(
            lambda txn: apply(self.dsa, rid, txn, batch))
        d.addCallbacks(self._written, self._write_failed, (refresh,))

    def _written(self, counts: tuple[int, int], refresh: _Refresh | None) -> None:
        self._writing = False
        if refresh is not None:
            refresh.written += counts[0]
            refresh.deleted += counts[1]
        if self._paused and len(self._pending) < MAX_PENDING // 2 and self._connection:
            self._paused = False
            self._connection.transport.resumeProducing()  # type: ignore[union-attr]
        self._flush()

    def _write_failed(self, failure: Failure) -> None:
        self._writing = False
        self._pending.clear()
        why = failure.getErrorMessage() or repr(failure.value)
        if self._connection is not None:
            self._connection.close(WriteFailed(f"changes not stored: {why}"))
        self._flush()

    def _all_written(self) -> Deferred[None]:
        if not self._writing and not self._pending:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._drained.append(d)
        return d
