"""How a persist search hears of commits (RFC 4533 §3.4).

- `changed` is called once per commit seen: this process's writer's, and
  any other's that `DSA.refresh` found. It advances `generation` and fires
  every Deferred `wait` handed out since the last one.
- A waiter keeps its Deferred until it fires (it asks again only then), so
  a persist search that wakes on its own timer holds one, not one per wake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from directory.deferreds import pending

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


class Commits:
    def __init__(self) -> None:
        self.generation = 0
        self._waiting: list[Deferred[None]] = []

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    def wait(self) -> Deferred[None]:
        ready: Deferred[None] = pending()
        self._waiting.append(ready)
        return ready

    def changed(self) -> None:
        self.generation += 1
        waiting, self._waiting = self._waiting, []
        for ready in waiting:
            ready.callback(None)
