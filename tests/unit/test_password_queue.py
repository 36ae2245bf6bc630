"""The password queue: bounded, least-served lane first, results on the reactor."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from directory.config import QueueLimits
from directory.protocol.results import LDAPError, ResultCode
from directory.verify_queue import VerifyQueue


def blocked(queue: VerifyQueue, gate: threading.Event, done: list[str]) -> Deferred[None]:
    def wait() -> None:
        gate.wait(10)
        done.append("blocker")
    return queue.submit("blocker", ("blocker",), wait)


@pytest_twisted.ensureDeferred
async def test_an_idle_client_goes_before_a_backlog() -> None:
    queue = VerifyQueue(QueueLimits(threads=1, per_client=8, total=16))
    gate = threading.Event()
    done: list[str] = []
    first = blocked(queue, gate, done)
    flood = [queue.submit("attacker", ("127.0.0.1", "cn=admin", "a"), done.append, f"a{i}")
             for i in range(4)]
    innocent = queue.submit("innocent", ("127.0.0.1", "cn=admin", "i"), done.append, "i")
    gate.set()
    await gatherResults([first, *flood, innocent])
    assert done == ["blocker", "i", "a0", "a1", "a2", "a3"]


@pytest_twisted.ensureDeferred
async def test_lanes_take_turns() -> None:
    queue = VerifyQueue(QueueLimits(threads=1, per_client=8, total=16))
    gate = threading.Event()
    done: list[str] = []
    first = blocked(queue, gate, done)
    jobs = [queue.submit(lane, (lane,), done.append, f"{lane}{i}")
            for lane in ("x", "y") for i in range(3)]
    gate.set()
    await gatherResults([first, *jobs])
    assert done == ["blocker", "y0", "x0", "y1", "x1", "y2", "x2"]


@pytest_twisted.ensureDeferred
async def test_a_client_past_its_share_is_busy() -> None:
    queue = VerifyQueue(QueueLimits(threads=1, per_client=2, total=16))
    gate = threading.Event()
    jobs = [queue.submit("c", ("c",), gate.wait, 10) for _ in range(2)]
    with pytest.raises(LDAPError) as refused:
        queue.submit("c", ("c",), gate.wait, 10)
    assert refused.value.code == ResultCode.BUSY
    gate.set()
    await gatherResults(jobs)
    assert await queue.submit("c", ("c",), len, "freed") == 5


@pytest_twisted.ensureDeferred
async def test_the_queue_is_bounded() -> None:
    queue = VerifyQueue(QueueLimits(threads=1, per_client=8, total=3))
    gate = threading.Event()
    jobs = [queue.submit(f"c{i}", (f"c{i}",), gate.wait, 10) for i in range(3)]
    with pytest.raises(LDAPError) as refused:
        queue.submit("another", ("another",), gate.wait, 10)
    assert refused.value.code == ResultCode.BUSY
    gate.set()
    await gatherResults(jobs)


@pytest_twisted.ensureDeferred
async def test_an_exception_reaches_the_caller() -> None:
    queue = VerifyQueue(QueueLimits())
    with pytest.raises(ZeroDivisionError):
        await queue.submit("c", ("c",), divmod, 1, 0)
    assert await queue.submit("c", ("c",), divmod, 7, 2) == (3, 1)
