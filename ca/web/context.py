"""What every resource of the web service shares: the directory, the CA, a pool.

- Reads (certificates, CRLs, request status) use the directory's read
  connection on the reactor thread: they are indexed look-ups.
- Writes go through the directory's single writer (`DSA.write`), so they
  commit with what they publish, or not at all.
- Anything slow (signing, password hashing, key generation, PKCS#12
  sealing) goes to `slow`, a bounded thread pool, never the reactor thread
  and never the writer's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ca.authority import Authority
from ca.web.config import WebConfig
from directory.dsa import DSA

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Web:
    reactor: Any
    dsa: DSA
    authority: Authority
    config: WebConfig
    pool: ThreadPool

    def slow(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """`work` on the bounded pool; its result (or failure) back on the reactor."""
        return deferToThreadPool(self.reactor, self.pool, work, *args, **kwargs)
