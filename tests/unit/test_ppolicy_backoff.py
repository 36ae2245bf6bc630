"""The root DN's per-source backoff, on a fake clock."""

from __future__ import annotations

from directory.ppolicy.backoff import CAPACITY, Backoff
from directory.ppolicy.config import RootBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing(backoff: Backoff, host: str, times: int) -> None:
    for _ in range(times):
        backoff.started(host)
        backoff.failed(host)


def test_refused_after_the_limit_for_the_delay_then_doubling() -> None:
    clock = Clock()
    backoff = Backoff(RootBackoff(failures=3, delay=2, max_delay=5), clock)
    failing(backoff, "10.0.0.1", 2)
    assert backoff.refusal("10.0.0.1") == 0
    failing(backoff, "10.0.0.1", 1)
    assert backoff.refusal("10.0.0.1") == 2
    clock.now += 2
    assert backoff.refusal("10.0.0.1") == 0
    failing(backoff, "10.0.0.1", 1)
    assert backoff.refusal("10.0.0.1") == 4
    clock.now += 4
    failing(backoff, "10.0.0.1", 1)
    assert backoff.refusal("10.0.0.1") == 5


def test_other_sources_are_not_affected() -> None:
    backoff = Backoff(RootBackoff(failures=1, delay=10, max_delay=10), Clock())
    failing(backoff, "10.0.0.1", 1)
    assert backoff.refusal("10.0.0.1") == 10
    assert backoff.refusal("10.0.0.2") == 0


def test_success_forgets() -> None:
    backoff = Backoff(RootBackoff(failures=2, delay=10, max_delay=10), Clock())
    failing(backoff, "h", 1)
    backoff.started("h")
    backoff.succeeded("h")
    failing(backoff, "h", 1)
    assert backoff.refusal("h") == 0


def test_binds_being_verified_count_once_a_source_failed() -> None:
    backoff = Backoff(RootBackoff(failures=3, delay=1, max_delay=1), Clock())
    for _ in range(5):
        backoff.started("h")
    assert backoff.refusal("h") == 0
    backoff.failed("h")
    assert backoff.refusal("h") == 1
    for _ in range(3):
        backoff.finished("h")
    assert backoff.refusal("h") == 0
    backoff.started("h")
    assert backoff.refusal("h") == 1


def test_off() -> None:
    backoff = Backoff(RootBackoff(failures=0), Clock())
    failing(backoff, "h", 100)
    assert backoff.refusal("h") == 0


def test_bounded_memory() -> None:
    backoff = Backoff(RootBackoff(failures=1, delay=10, max_delay=10), Clock())
    failing(backoff, "first", 1)
    for i in range(CAPACITY):
        failing(backoff, f"10.{i}", 1)
    assert backoff.refusal("first") == 0
    assert backoff.refusal(f"10.{CAPACITY - 1}") == 10
