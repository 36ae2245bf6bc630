"""The single writer with group commit (DESIGN.md, "Concurrency").

- Every change runs on one dedicated thread, so the reactor never waits for
  the database's write lock or an fsync.
- Jobs that queue up while a commit is in progress are run together in the
  next transaction, each inside its own savepoint: a job that fails rolls
  back alone, and one COMMIT (one fsync) acknowledges them all.
- A job's Deferred fires only after its transaction has committed, so a
  client is never told "success" for a change a crash could still lose.
- Before any Deferred fires, the backend forgets cached copies of the
  entries the transaction changed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

from directory.backend import Backend, Transaction

T = TypeVar("T")
Job = tuple[Callable[[Transaction], Any], defer.Deferred[Any]]

MAX_BATCH = 512


class Writer:
    def __init__(self, backend: Backend, reactor: IReactorFromThreads) -> None:
        self.backend = backend
        self.reactor = reactor
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="certdir-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[Transaction], T]) -> defer.Deferred[T]:
        d: defer.Deferred[T] = defer.Deferred()
        self._queue.put((job, d))
        return d

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Job]) -> None:
        outcomes: list[tuple[defer.Deferred[Any], Any]] = []
        touched: frozenset[int] = frozenset()
        try:
            with self.backend.transaction() as txn:
                for job, d in batch:
                    try:
                        with txn.savepoint():
                            outcomes.append((d, job(txn)))
                    except Exception:
                        outcomes.append((d, Failure()))
                touched = frozenset(txn.touched)
        except Exception:
            failure = Failure()
            outcomes = [(d, failure) for _, d in batch]
        self.reactor.callFromThread(self._deliver, touched, outcomes)

    def _deliver(self, touched: frozenset[int],
                 outcomes: list[tuple[defer.Deferred[Any], Any]]) -> None:
        self.backend.invalidate(touched)
        for d, outcome in outcomes:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)
