"""KMS tests: each runs on a real SQLite file holding the KMS tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kms import store


def database(path: Path) -> sqlite3.Connection:
    """A connection like the directory's (autocommit, explicit BEGIN/COMMIT) holding
    the KMS tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    with transaction(conn):
        store.create(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
