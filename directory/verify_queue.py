"""The bounded, fair queue for password work: hashing and verification.

Password hashes are slow on purpose, so they never run on the reactor
thread nor inside the writer's transaction. They run here, on a small fixed
number of threads (`QueueLimits.threads`), one job at a time per thread.

- Fair share: each job names a `path`, outermost first — bind and the
  password writes use (peer address, target DN, connection). Waiting jobs
  form a tree along their paths and, at every level, the next job comes
  from the branch served least so far (first among peer addresses, then
  among the DNs one address is working on, then among its connections); a
  branch that was idle starts just below the least served one, so a client
  that was waiting for nothing goes before those with a backlog. A flood of
  binds from one client, or to one DN, waits behind itself, not in front of
  everyone.
- Bounds: a `client` (a connection) may have `per_client` jobs queued or
  running, and the queue `total` jobs; past either, `submit` raises
  busy (51), before anything is queued. Nothing grows without bound.
- Callers keep each operation's jobs in turn (submit the next when the
  previous is done), so one request holds at most one thread at a time and
  never more than one of its client's places.

API (for operations and overlays, e.g. password policy history checks):

    queue = dsa.passwords                       # one per DSA
    d = queue.submit(client, path, fn, *args)   # Deferred of fn(*args)

`submit` is called on the reactor thread; `fn` runs on a worker thread and
must not touch the reactor or the backend's reader; its result (or
exception) arrives on the reactor thread through the Deferred.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from directory.config import QueueLimits
from directory.protocol.results import LDAPError, ResultCode

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class _Job:
    client: str
    run: Callable[[], Any]
    result: Deferred[Any]


@dataclass
class _Lane:
    """Jobs waiting under one path prefix: sub-lanes, or the jobs themselves."""
    lanes: dict[str, _Lane] = field(default_factory=dict)
    jobs: deque[_Job] = field(default_factory=deque)
    served: int = 0

    def put(self, path: tuple[str, ...], job: _Job) -> None:
        if not path:
            self.jobs.append(job)
            return
        lane = self.lanes.get(path[0])
        if lane is None:
            # A lane that was idle goes before those with a backlog.
            first = min((other.served for other in self.lanes.values()), default=1)
            lane = self.lanes[path[0]] = _Lane(served=first - 1)
        lane.put(path[1:], job)

    def take(self) -> _Job:
        if self.jobs:
            return self.jobs.popleft()
        name, lane = min(self.lanes.items(), key=lambda item: item[1].served)
        lane.served += 1
        job = lane.take()
        if not lane.jobs and not lane.lanes:
            del self.lanes[name]
        return job


class VerifyQueue:
    def __init__(self, limits: QueueLimits, reactor: Any = None) -> None:
        self.limits = limits
        self._reactor = reactor
        self._pool: ThreadPool | None = None
        self._waiting = _Lane()
        self._queued = 0
        self._running = 0
        self._per_client: Counter[str] = Counter()

    def submit(self, client: str, path: tuple[str, ...], fn: Callable[P, T],
               *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        if self._per_client[client] >= self.limits.per_client:
            raise LDAPError(ResultCode.BUSY, "too many password checks from this connection")
        if self._queued + self._running >= self.limits.total:
            raise LDAPError(ResultCode.BUSY, "too many password checks waiting")
        result: Deferred[T] = Deferred()
        self._per_client[client] += 1
        self._waiting.put(path, _Job(client, lambda: fn(*args, **kwargs), result))
        self._queued += 1
        self._start_next()
        return result

    def _threads(self) -> tuple[Any, ThreadPool]:
        if self._reactor is None:
            from twisted.internet import reactor
            self._reactor = reactor
        if self._pool is None:
            self._pool = ThreadPool(self.limits.threads, self.limits.threads, "passwords")
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)
        return self._reactor, self._pool

    def _start_next(self) -> None:
        while self._queued and self._running < self.limits.threads:
            job = self._waiting.take()
            self._queued -= 1
            self._running += 1
            reactor, pool = self._threads()
            deferToThreadPool(reactor, pool, job.run).addBoth(self._finished, job)

    def _finished(self, outcome: object, job: _Job) -> None:
        self._running -= 1
        self._per_client[job.client] -= 1
        if not self._per_client[job.client]:
            del self._per_client[job.client]
        self._start_next()
        if isinstance(outcome, Failure):
            job.result.errback(outcome)
        else:
            job.result.callback(outcome)
