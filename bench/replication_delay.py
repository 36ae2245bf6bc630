"""Change-propagation delay: a paced writer on a provider, persist searches observing.

- The stamped entries are `STAMPS` people under ou=stamps (in the book both providers were
  loaded with, so every consumer holds them after its initial refresh).
- Each observer is python-ldap's SyncreplConsumer on its own connection, bound as the
  server's root DN: refreshAndPersist of ou=stamps (a refresh of `STAMPS` entries), then
  the persist phase; it notes when each stamp first arrives. All observers are running and
  past their refresh before the writer starts.
- The writer replaces `description` of the stamped people in turn with `seq N` at `rate`
  modifies per second for `duration` seconds (a modify is sent at its slot, or at once when
  the writer is behind), one synchronous modify at a time on one connection. A provider
  too slow for the rate does not stretch the run: the writer stops after `OVERRUN` times
  the duration, having written fewer than planned.
- A change's delay is from the writer sending its modify to an observer receiving it (the
  provider's own commit included, so it is never negative); the writer's own latency (send
  to result) is reported beside it. Writer and observers are threads of this process, so
  they read one clock. After the last write the run waits until every observer has every
  stamp, or until none received another for `DRAIN_S` seconds; a stamp an observer has not
  received by then is lost unless a later stamp of the same entry arrived: then it is
  superseded (a consumer may apply both modifies in one transaction, and a persist search
  sends an entry as it is, not each change). With `STAMPS` people and the writer's default
  rate, each is modified every 20 s.
- After the run the stamps' values on each observed server are compared with the
  provider's: `converged` says whether the server ended with what the provider holds.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import ldap
import ldap.ldapobject
from harness import BenchError
from ldap.syncrepl import SyncreplConsumer
from replication_servers import Credentials, values_below

STAMPS = 1000
STAMP_ATTRIBUTE = "description"
POLL_S = 0.2
REFRESH_TIMEOUT_S = 60.0
DRAIN_S = 30.0
OVERRUN = 2.0


def stamps_base(suffix: str) -> str:
    return f"ou=stamps,{suffix}"


def stamp_dn(n: int, suffix: str) -> str:
    return f"cn=stamp{n:03d},{stamps_base(suffix)}"


def stamps_ldif(suffix: str) -> str:
    """The stamped people and their organizational unit."""
    people = "".join(f"dn: {stamp_dn(n, suffix)}\nobjectClass: inetOrgPerson\n"
                     f"cn: stamp{n:03d}\nsn: stamp\n\n" for n in range(STAMPS))
    return f"dn: {stamps_base(suffix)}\nobjectClass: organizationalUnit\nou: stamps\n\n{people}"


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(share * 100) - 1]


@dataclass(frozen=True, slots=True)
class Delays:
    """One observer's figures over one write run, in milliseconds."""

    path: str
    written: int
    seen: int
    superseded: int
    converged: bool | None
    p50_ms: float
    p99_ms: float
    max_ms: float


class _Observer(ldap.ldapobject.SimpleLDAPObject, SyncreplConsumer):  # type: ignore[misc]
    """Notes when each `seq N` value first arrives."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.arrived: dict[int, float] = {}
        self.refreshed = threading.Event()
        self.cookie: str | None = None

    def syncrepl_get_cookie(self) -> str | None:
        return self.cookie

    def syncrepl_set_cookie(self, cookie: str) -> None:
        self.cookie = cookie

    def syncrepl_entry(self, dn: str, attributes: dict[str, list[bytes]], uuid: str) -> None:
        now = time.perf_counter()
        for value in attributes.get(STAMP_ATTRIBUTE, ()):
            word, _, number = value.decode().partition(" ")
            if word == "seq":
                self.arrived.setdefault(int(number), now)

    def syncrepl_delete(self, uuids: list[str]) -> None:
        """Nothing under ou=stamps is deleted."""

    def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:
        """Presence is not what is measured."""

    def syncrepl_refreshdone(self) -> None:
        self.refreshed.set()


@dataclass
class Watch:
    """One observer's persist search, polled by its own thread until `stop`."""

    path: str
    server: Credentials
    suffix: str
    observer: _Observer = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    failure: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def begin(self) -> None:
        self.observer = _Observer(self.server.url)
        self.observer.simple_bind_s(self.server.root_dn, self.server.password)
        msgid = self.observer.syncrepl_search(
            stamps_base(self.suffix), ldap.SCOPE_SUBTREE, mode="refreshAndPersist",
            attrlist=[STAMP_ATTRIBUTE])
        self.thread = threading.Thread(target=self._poll, args=(msgid,), daemon=True)
        self.thread.start()
        if not self.observer.refreshed.wait(REFRESH_TIMEOUT_S):
            self.end()
            raise BenchError(f"{self.path}: the observer's refresh of ou=stamps did not end "
                             f"within {REFRESH_TIMEOUT_S:g} s")

    def _poll(self, msgid: int) -> None:
        while not self.stop.is_set():
            try:
                self.observer.syncrepl_poll(msgid=msgid, timeout=POLL_S)
            except ldap.TIMEOUT:
                continue
            except ldap.LDAPError as error:
                self.failure.append(error)
                return

    def end(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.observer.unbind_s()
        if self.failure:
            raise BenchError(f"{self.path}: the observer's persist search failed: "
                             f"{self.failure[0]}")


def planned(rate: float, duration: float) -> int:
    return max(1, round(rate * duration))


def write(provider: Credentials, suffix: str, rate: float, duration: float
          ) -> tuple[dict[int, float], list[float]]:
    """Modify the stamps at `rate` for `duration`; when each was sent, each latency (s)."""
    client = ldap.initialize(provider.url)
    client.simple_bind_s(provider.root_dn, provider.password)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    begin = time.perf_counter()
    try:
        for seq in range(planned(rate, duration)):
            if seq and time.perf_counter() - begin > OVERRUN * duration:
                break
            pause = begin + seq / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent[seq] = time.perf_counter()
            client.modify_s(stamp_dn(seq % STAMPS, suffix),
                            [(ldap.MOD_REPLACE, STAMP_ATTRIBUTE, f"seq {seq}".encode())])
            latencies.append(time.perf_counter() - sent[seq])
    except ldap.LDAPError as error:
        raise BenchError(f"the writer's modify on port {provider.port} failed: {error}") from None
    finally:
        client.unbind_s()
    return sent, latencies


def propagation(name: str, provider: Credentials, observed: Sequence[tuple[str, Credentials]],
                suffix: str, rate: float, duration: float) -> list[Delays]:
    """One write run on `provider` (called `name`): the writer's latency, then each
    observer's delays."""
    watches = [Watch(path, server, suffix) for path, server in observed]
    started: list[Watch] = []
    try:
        for watch in watches:
            watch.begin()
            started.append(watch)
        sent, latencies = write(provider, suffix, rate, duration)
        drain(watches, len(sent))
    finally:
        for watch in started:
            watch.end()
    final = values_below(provider, stamps_base(suffix), STAMP_ATTRIBUTE)
    writer = summary(f"{name} writer", sent, latencies, 0, None)
    return [writer, *(summary(w.path, sent, [w.observer.arrived[seq] - at
                                             for seq, at in sent.items()
                                             if seq in w.observer.arrived],
                              superseded(w.observer.arrived, sent),
                              values_below(w.server, stamps_base(suffix),
                                           STAMP_ATTRIBUTE) == final)
                      for w in watches)]


def drain(watches: Sequence[Watch], written: int) -> None:
    """Wait until every observer has seen `written` stamps, or none saw another for
    `DRAIN_S` seconds."""
    seen = [len(w.observer.arrived) for w in watches]
    quiet_since = time.monotonic()
    while min(seen) < written and time.monotonic() - quiet_since < DRAIN_S:
        time.sleep(POLL_S)
        now = [len(w.observer.arrived) for w in watches]
        if now != seen:
            seen, quiet_since = now, time.monotonic()


def superseded(arrived: dict[int, float], sent: dict[int, float]) -> int:
    """The stamps never seen of which a later stamp of the same entry was."""
    newest: dict[int, int] = {}
    for seq in arrived:
        newest[seq % STAMPS] = max(seq, newest.get(seq % STAMPS, seq))
    return sum(1 for seq in sent if seq not in arrived and newest.get(seq % STAMPS, -1) > seq)


def summary(path: str, sent: dict[int, float], seconds: Sequence[float], replaced: int,
            converged: bool | None) -> Delays:
    if not seconds:
        nan = float("nan")
        return Delays(path, len(sent), 0, replaced, converged, nan, nan, nan)
    return Delays(path, len(sent), len(seconds), replaced, converged,
                  percentile(seconds, 0.5) * 1000, percentile(seconds, 0.99) * 1000,
                  max(seconds) * 1000)
