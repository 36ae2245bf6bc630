"""Per-source failure backoff for the root DN's binds (kept in memory).

- Failures are counted per source address (the peer's IP, not its port).
  After `failures` of them, root binds from that address are refused
  without verifying the password for `delay` seconds; each further failure
  doubles the delay, up to `max_delay`. A successful root bind from the
  address forgets its failures. Other addresses are not affected.
- Once an address has failed, its root binds still being verified count
  as failures for the limit (and after a refusal period only one may be
  verified at a time), so a pipelined burst cannot slip past the limit.
  Binds sent before the first failure is known are all verified: the
  verification queue bounds those.
- At most `CAPACITY` addresses are remembered (the oldest is forgotten),
  so a spray of sources cannot grow memory without bound.
- Each worker process keeps its own counts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from directory.ppolicy.config import RootBackoff

CAPACITY = 10_000
MAX_DOUBLINGS = 32


@dataclass
class _Source:
    failures: int = 0
    verifying: int = 0
    until: float = 0.0


class Backoff:
    def __init__(self, settings: RootBackoff,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def _source(self, host: str) -> _Source:
        source = self._sources.pop(host, None) or _Source()
        self._sources[host] = source
        while len(self._sources) > CAPACITY:
            self._sources.popitem(last=False)
        return source

    def refusal(self, host: str) -> float:
        """Seconds until `host` may try the root DN again; 0 when it may now."""
        source = self._sources.get(host)
        limit = self.settings.failures
        if source is None or not limit or not source.failures:
            return 0.0
        waiting = source.until - self.clock()
        if waiting > 0:
            return waiting
        if source.verifying >= max(1, limit - source.failures):
            return self.settings.delay
        return 0.0

    def started(self, host: str) -> None:
        if self.settings.failures:
            self._source(host).verifying += 1

    def finished(self, host: str) -> None:
        """A root bind from `host` ended neither in success nor in failure."""
        source = self._sources.get(host)
        if source is not None:
            source.verifying = max(0, source.verifying - 1)

    def failed(self, host: str) -> None:
        limit = self.settings.failures
        if not limit:
            return
        source = self._source(host)
        source.verifying = max(0, source.verifying - 1)
        source.failures += 1
        if source.failures >= limit:
            delay = self.settings.delay * 2 ** min(source.failures - limit, MAX_DOUBLINGS)
            source.until = self.clock() + min(delay, self.settings.max_delay)

    def succeeded(self, host: str) -> None:
        self._sources.pop(host, None)
