"""What every resource of the web service shares: the directory, the CA, a pool.

- Reads (certificates, CRLs, request status) run in one read snapshot of
  the directory's storage (`Backend.reading`) on the reactor thread: they
  are indexed look-ups.
- Writes go through the directory's single writer (`DSA.write`), so they
  commit with what they publish, or not at all.
- Anything slow (signing, password hashing, key generation, PKCS#12
  sealing) goes to `slow`, a bounded thread pool, never the reactor thread
  and never the writer's transaction.
- `sessions` are the pages' logins and CSRF tokens (`ca.web.session`).
- The CA cannot import the KMS, so the application hands in two hooks:
  `audit`, which records an officer's action in the hash-chained audit log
  inside the writer's transaction (the same call as `kms.audit.record`),
  and `crls_published`, called after the commit of new CRLs (it writes
  the public folder's CRL files, as the CLI does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ca.authority import Authority
from ca.crl import CRLs
from ca.web.config import WebConfig
from ca.web.session import Sessions
from directory.backend import Records
from directory.dsa import DSA

P = ParamSpec("P")
T = TypeVar("T")


class Audit(Protocol):
    def __call__(self, records: Records, actor: str, action: str, subject: str,
                 details: Mapping[str, str | int | None], now: dt.datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Web:
    reactor: Any
    dsa: DSA
    authority: Authority
    config: WebConfig
    pool: ThreadPool
    sessions: Sessions
    audit: Audit
    crls_published: Callable[[CRLs], None]

    def slow(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        """`work` on the bounded pool; its result (or failure) back on the reactor."""
        return deferToThreadPool(self.reactor, self.pool, work, *args, **kwargs)
