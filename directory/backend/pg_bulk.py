"""Bulk inserts on PostgreSQL: new entries below entries new in the same
transaction go in a thousand at a time, in one statement, instead of one
round trip each.

- An entry may wait in the batch only when nothing can make its INSERT
  fail later: its parent was created by this transaction (so the only
  entries below that parent are ones this transaction put there, none
  moved there: a rename forgets what is new) and no entry this
  transaction created has its path (a set of path hashes; a match is
  checked against the database before the entry is let in). Every other
  entry, and the LDAP add of a single entry, goes in at once as before, so
  "already exists" and "no parent" are still reported on the entry that
  causes them.
- A batch is one `INSERT ... SELECT FROM unnest(...) RETURNING id, path`:
  ids come from the identity column as for single inserts, with no gaps
  (the directory's size is read from the highest id).
- The transaction writes the batch (`write`) before anything reads
  entries through it, before a child of a waiting entry, and when it ends,
  so it still sees its own writes; `stored` is told each written entry's id
  and index rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg

# Entries per statement.
BATCH = 1000

IndexRows = Iterable[tuple[str, bytes]]
Row = tuple[int, bytes, str, bytes, IndexRows]


class Bulk:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]],
                 stored: Callable[[int, IndexRows], None]) -> None:
        self._conn = conn
        self._stored = stored
        self._rows: list[Row] = []
        self._waiting: set[bytes] = set()
        self._new_ids: set[int] = set()
        self._new_paths: set[int] = set()

    def waits(self, path: bytes) -> bool:
        """Whether the entry at `path` waits in the batch."""
        return path in self._waiting

    def add(self, parent: int | None, path: bytes, dn: str, blob: bytes, index_rows: IndexRows,
            exists: Callable[[bytes], bool]) -> bool:
        """Let the new entry wait in the batch if it may; False if it must be
        inserted now (then call `created`). `exists` looks a path up in the
        database (after `write`)."""
        if parent is None or parent not in self._new_ids:
            return False
        if hash(path) in self._new_paths:
            self.write()
            if exists(path):
                return False
        self._rows.append((parent, path, dn, blob, index_rows))
        self._waiting.add(path)
        self._new_paths.add(hash(path))
        if len(self._rows) >= BATCH:
            self.write()
        return True

    def created(self, entry_id: int, path: bytes) -> None:
        self._new_ids.add(entry_id)
        self._new_paths.add(hash(path))

    def write(self) -> None:
        """Insert the waiting entries."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        self._waiting.clear()
        written = self._conn.execute(
            "INSERT INTO entries (parent, path, dn, attrs) SELECT * FROM"
            " unnest(%s::bigint[], %s::bytea[], %s::text[], %s::bytea[]) RETURNING id, path",
            ([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows],
             [row[3] for row in rows]), binary=True).fetchall()
        ids = {bytes(path): int(entry_id) for entry_id, path in written}
        for _, path, _, _, index_rows in rows:
            entry_id = ids[path]
            self._new_ids.add(entry_id)
            self._stored(entry_id, index_rows)

    def forget(self) -> None:
        """Write the waiting entries and forget which are new (a rename): the
        entries after go in one at a time until new parents come."""
        self.write()
        self._new_ids.clear()
        self._new_paths.clear()

    def rolled_back(self) -> None:
        """A savepoint rolled back: what waited since is gone, and nothing is new."""
        self._rows.clear()
        self._waiting.clear()
        self._new_ids.clear()
        self._new_paths.clear()
