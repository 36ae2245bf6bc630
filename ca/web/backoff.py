"""Login backoff: failed logins lock a key (an account or a client address).

- Each key may fail `free` times; after that it is locked: attempts are
  answered 429 Too Many Requests with Retry-After (RFC 6585 §4) without
  the password being looked at, for `base` seconds after the last
  failure, doubling with each further failure up to `cap` seconds. So a
  guesser gets `free` tries at once and then at most one try per lock.
- A success clears the key's failures; failures older than `forget`
  seconds (counted from the last one) are forgotten.
- The table holds at most `limit` keys: when full, forgotten keys go
  first, then the least recently failed, so a flood of addresses cannot
  exhaust memory.
- Time comes from the given clock (the reactor's `seconds`), so tests
  drive it by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Strikes:
    count: int
    last: float


@dataclass(frozen=True, slots=True)
class Rule:
    free: int
    base: float = 2.0
    cap: float = 300.0
    forget: float = 900.0
    limit: int = 10_000


class Backoff:
    def __init__(self, rule: Rule, clock: Callable[[], float]) -> None:
        self.rule = rule
        self._clock = clock
        self._strikes: dict[str, Strikes] = {}

    def _lock_seconds(self, count: int) -> float:
        if count < self.rule.free:
            return 0.0
        return min(self.rule.cap, self.rule.base * 2.0 ** (count - self.rule.free))

    def _live(self, key: str, now: float) -> Strikes | None:
        strikes = self._strikes.get(key)
        if strikes is not None and now - strikes.last >= self.rule.forget:
            del self._strikes[key]
            return None
        return strikes

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may try again; 0 when it may now."""
        now = self._clock()
        strikes = self._live(key, now)
        if strikes is None:
            return 0
        remaining = strikes.last + self._lock_seconds(strikes.count) - now
        return max(0, math.ceil(remaining))

    def failed(self, key: str) -> None:
        now = self._clock()
        strikes = self._live(key, now)
        if strikes is None and len(self._strikes) >= self.rule.limit:
            self._make_room(now)
        count = 1 if strikes is None else strikes.count + 1
        self._strikes[key] = Strikes(count, now)

    def succeeded(self, key: str) -> None:
        self._strikes.pop(key, None)

    def _make_room(self, now: float) -> None:
        for key in [k for k, s in self._strikes.items() if now - s.last >= self.rule.forget]:
            del self._strikes[key]
        if len(self._strikes) >= self.rule.limit:
            oldest = min(self._strikes, key=lambda k: self._strikes[k].last)
            del self._strikes[oldest]
