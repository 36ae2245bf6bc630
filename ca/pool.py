"""Slow work off the reactor and out of the writer's transaction (DESIGN.md).

- `Slow` is how CA and KMS code hands CPU-heavy work (signing, key
  generation, PKCS#12 sealing) to a bounded thread pool and gets its result,
  or its failure, back on the reactor thread as a Deferred.
  `ca.web.context.Web.slow` is one; `on_pool` makes one from any Twisted
  thread pool (the reactor's own, for the LDAP extended operation and the
  CRL schedule, which run without the web service).
- The work must not touch the directory's storage or caches from its thread:
  it gets what it needs, already read, as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

P = ParamSpec("P")
T = TypeVar("T")


class Slow(Protocol):
    def __call__(self, work: Callable[P, T], *args: P.args,
                 **kwargs: P.kwargs) -> Deferred[T]: ...


def on_pool(reactor: Any, pool: ThreadPool) -> Slow:
    def slow(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return deferToThreadPool(reactor, pool, work, *args, **kwargs)

    return slow
