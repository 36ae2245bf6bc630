"""The CA's commands and the server's renewals write to the directory the same way.

- `ca_directory` opens the directory with the CA's and the KMS's tables
  ready, to read from before the transaction opens.
- `writing` is a transaction acting as the CA (or the root DN). It holds
  SQLite's write lock, which the server's writer waits for: only database
  writes go in it, everything is signed before it opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from ca.authority import Authority
from ca.store import Store
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.dsa import DSA
from directory.publisher import DirectoryWriter
from kms import store as kms_store


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def ca_directory(config: Config) -> Iterator[DSA]:
    with offline_directory(config) as dsa:
        Store.create(dsa.backend.reader)
        kms_store.create(dsa.backend.reader)
        yield dsa


@contextmanager
def writing(dsa: DSA, authority: Authority | None) -> Iterator[DirectoryWriter]:
    with dsa.backend.transaction() as txn:
        actor = dsa.parse_dn(authority.entry_dn) if authority else dsa.root_dn
        yield DirectoryWriter(dsa, txn, actor)
