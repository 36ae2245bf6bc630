"""Slow work handed to the web service's pool in batches (the reactor rule, DESIGN.md).

- `Batches.run(item)` queues `item` and returns a Deferred that fires, on the
  reactor, with `work(item)` or its failure; `work` runs on the pool
  (`ca.web.context.Web.slow`), never on the reactor.
- At most one batch is on the pool at a time: what is queued while it runs
  goes in the next one, in order. Each hand-over to a pool thread costs a
  thread wake-up and two GIL switches, which for an OCSP signature (about
  100 µs, the GIL held throughout) cost the reactor more than the signature
  itself; under load a batch carries many signatures for one hand-over. Idle,
  a batch of one leaves at once, so nothing waits to be batched.
- One item's failure fails only its own Deferred.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ca.pool import Slow

A = TypeVar("A")
R = TypeVar("R")


def _each(work: Callable[[A], R], items: Sequence[A]) -> list[R | Exception]:
    done: list[R | Exception] = []
    for item in items:
        try:
            done.append(work(item))
        except Exception as e:  # handed to that item's Deferred
            done.append(e)
    return done


class Batches(Generic[A, R]):
    """`work` on `slow`, one batch at a time. Used from the reactor thread only."""

    def __init__(self, slow: Slow, work: Callable[[A], R]) -> None:
        self._slow = slow
        self._work = work
        self._queued: list[tuple[A, Deferred[R]]] = []
        self._busy = False

    def run(self, item: A) -> Deferred[R]:
        d: Deferred[R] = Deferred()
        self._queued.append((item, d))
        if not self._busy:
            self._next()
        return d

    def _next(self) -> None:
        batch, self._queued = self._queued, []
        self._busy = True
        self._slow(_each, self._work, [item for item, _ in batch]).addBoth(self._done, batch)

    def _done(self, results: list[R | Exception] | Failure,
              batch: list[tuple[A, Deferred[R]]]) -> None:
        self._busy = False
        if self._queued:
            self._next()
        for n, (_, d) in enumerate(batch):
            result = results if isinstance(results, Failure) else results[n]
            if isinstance(result, Exception):
                d.errback(Failure(result))
            elif isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)
