"""The CA's commands and the server's renewals write to the directory the same way.

- `writing` is a transaction acting as the CA (or the root DN). It holds
  the storage's write lock, which the server's writer waits for: only database
  writes go in it, everything is signed before it opens. It records the
  contextCSN of what it stamped before it commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from ca.authority import Authority
from directory.dsa import DSA
from directory.publisher import DirectoryWriter


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def writing(dsa: DSA, authority: Authority | None) -> Iterator[DirectoryWriter]:
    with dsa.backend.transaction() as txn:
        actor = dsa.parse_dn(authority.entry_dn) if authority else dsa.root_dn
        yield DirectoryWriter(dsa, txn, actor)
        dsa.stamped(txn)
