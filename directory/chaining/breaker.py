"""A circuit breaker for one peer: a dead or black-holed peer costs one
timeout, then is skipped.

- Closed: every search goes to the peer.
- A failure (refused, reset, timed out) opens it: searches skip the peer
  until `retry_at`, at once, costing nothing.
- After `retry_at` one search is let through (half open); the others keep
  skipping until it ends. Success closes the breaker; failure opens it
  again for twice as long, up to `MOST_S`.
"""

from __future__ import annotations

from collections.abc import Callable

FIRST_S = 5.0
MOST_S = 300.0


class Breaker:
    __slots__ = ("_now", "backoff", "failures", "retry_at", "trying")

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.failures = 0
        self.retry_at = 0.0
        self.backoff = FIRST_S
        self.trying = False

    def allows(self) -> bool:
        """Whether a search may go to the peer now (and, half open, be the one trial)."""
        if not self.failures:
            return True
        if self.trying or self._now() < self.retry_at:
            return False
        self.trying = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self.backoff = FIRST_S
        self.trying = False

    def failed(self) -> None:
        # Only the trial doubles the wait: searches already on the way when
        # the peer died fail together, and count once.
        if self.trying:
            self.backoff = min(self.backoff * 2, MOST_S)
        self.failures += 1
        self.trying = False
        self.retry_at = self._now() + self.backoff
