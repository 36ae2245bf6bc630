"""Binds to one entry take turns while a failure of it is being written.

- A bind to an entry nobody holds goes ahead at once without a turn.
  When it fails it takes the entry's turn (`hold`) for as long as its
  failure is being written; the client has its answer meanwhile, so a
  wrong password costs no more time than a missing entry.
- A bind that arrives while someone holds the entry waits, then holds it
  until its outcome is final (for a failure: committed), and passes the
  turn to the next waiter on a later reactor turn (no recursion however
  many wait).
- So pipelined guesses are judged one after the other against the
  committed failure count: the lock comes after exactly the configured
  number of wrong passwords, however many a client sends at once.
  Successful binds never wait for each other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from directory.deferreds import fired, pending
from directory.protocol.dn import DN

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime

T = TypeVar("T")


@dataclass
class _Line:
    holders: int = 0
    waiting: deque[Deferred[bool]] = field(default_factory=deque)


def _reactor() -> IReactorTime:
    from twisted.internet import reactor
    return reactor


class Turns:
    def __init__(self, clock: Callable[[], IReactorTime] = _reactor) -> None:
        self.clock = clock
        self._lines: dict[DN, _Line] = {}

    def wait(self, dn: DN) -> Deferred[bool]:
        """Fires with True when the caller now holds the turn (and must
        `release` it), False when it may go ahead without one."""
        line = self._lines.get(dn)
        if line is None:
            return fired(False)
        waiter: Deferred[bool] = pending()
        line.waiting.append(waiter)
        return waiter

    def hold(self, dn: DN) -> None:
        self._lines.setdefault(dn, _Line()).holders += 1

    def release(self, dn: DN) -> None:
        line = self._lines.get(dn)
        if line is None:
            return
        line.holders -= 1
        if line.holders > 0:
            return
        if not line.waiting:
            del self._lines[dn]
            return
        line.holders = 1
        self.clock().callLater(0, line.waiting.popleft().callback, True)


class Turn:
    """One bind's part in an entry's line: `until(write)` holds the turn
    until its failure `write` is done; `end` (a callback on the bind's
    outcome) gives back a turn it still holds."""

    def __init__(self, turns: Turns, dn: DN, held: bool) -> None:
        self.turns = turns
        self.dn = dn
        self.held = held

    def until(self, write: Deferred[T]) -> None:
        if not self.held:
            self.turns.hold(self.dn)
        self.held = False

        def release(result: T) -> T:
            self.turns.release(self.dn)
            return result

        write.addBoth(release)

    def end(self, result: T) -> T:
        if self.held:
            self.held = False
            self.turns.release(self.dn)
        return result
