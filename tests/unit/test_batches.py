"""ca.web.batches with a pool the test drives: what is queued while a batch runs goes
in the next one, in order, and one item's failure fails only its own Deferred."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from ca.web.batches import Batches


class Pool:
    """A `Slow` whose jobs run when the test says."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []

    def __call__(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.jobs.append((work, args, d))
        return d

    def run_one(self) -> None:
        work, args, d = self.jobs.pop(0)
        d.callback(work(*args))


def halve(n: int) -> int:
    if n % 2:
        raise ValueError(f"{n} is odd")
    return n // 2


def outcome(d: Deferred[int]) -> list[object]:
    seen: list[object] = []
    d.addCallbacks(seen.append, lambda f: seen.append(f.getErrorMessage()))
    return seen


def test_what_is_queued_meanwhile_goes_in_one_next_batch() -> None:
    pool = Pool()
    batches: Batches[int, int] = Batches(pool, halve)
    seen = [outcome(batches.run(n)) for n in (2, 4, 6, 8)]
    pool.run_one()
    jobs_after_first = len(pool.jobs)
    pool.run_one()
    assert (jobs_after_first, seen, pool.jobs) == (1, [[1], [2], [3], [4]], [])


def test_a_failing_item_fails_only_itself() -> None:
    pool = Pool()
    batches: Batches[int, int] = Batches(pool, halve)
    first = outcome(batches.run(2))
    rest = [outcome(batches.run(n)) for n in (3, 4)]
    pool.run_one()
    pool.run_one()
    assert (first, rest) == ([1], [["3 is odd"], [2]])
