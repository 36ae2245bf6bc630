"""Bulk inserts on PostgreSQL: new entries below entries new in the same
transaction go by COPY, a thousand at a time, instead of one round trip each.

- An entry may wait in the batch only when nothing can make its INSERT
  fail later: its parent was created by this transaction (so the only
  entries below that parent are ones this transaction put there, none
  moved there: a rename forgets what is new) and no entry this
  transaction created has its path (a set of path hashes; a match is
  checked against the database before the entry is let in). Every other
  entry, and the LDAP add of a single entry, goes in at once as before, so
  "already exists" and "no parent" are still reported on the entry that
  causes them.
- Ids come from the entries' own identity sequence, a block at a time, so
  an entry has its id (for its index rows) before it is written.
- The transaction writes the batch (`write`) before anything reads
  entries through it, and when it ends, so it still sees its own writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

# Entries per COPY, and ids taken from the sequence at a time.
BATCH = 1000

Row = tuple[int, int, bytes, str, bytes]


class Bulk:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn
        self._ids: list[int] = []
        self._rows: list[Row] = []
        # Paths of the waiting rows, for the parents of the rows after them.
        self._waiting: dict[bytes, int] = {}
        self._new_ids: set[int] = set()
        self._new_paths: set[int] = set()

    def waiting(self, path: bytes) -> int | None:
        """The id of the waiting entry at `path`, if one is waiting."""
        return self._waiting.get(path)

    def add(self, parent: int | None, path: bytes, dn: str, blob: bytes,
            exists: Callable[[bytes], bool]) -> int | None:
        """The new entry's id if it may wait in the batch; None if it must be
        inserted now (then call `created`). `exists` looks a path up in the
        database (after `write`)."""
        if parent is None or parent not in self._new_ids:
            return None
        if hash(path) in self._new_paths:
            self.write()
            if exists(path):
                return None
        if not self._ids:
            self._ids = [row[0] for row in self._conn.execute(
                "SELECT nextval(pg_get_serial_sequence('entries', 'id'))"
                " FROM generate_series(1, %s)", (BATCH,))]
            self._ids.reverse()
        entry_id = self._ids.pop()
        self._rows.append((entry_id, parent, path, dn, blob))
        self._waiting[path] = entry_id
        self.created(entry_id, path)
        if len(self._rows) >= BATCH:
            self.write()
        return entry_id

    def created(self, entry_id: int, path: bytes) -> None:
        self._new_ids.add(entry_id)
        self._new_paths.add(hash(path))

    def write(self) -> None:
        """Write the waiting entries."""
        if not self._rows:
            return
        with self._conn.cursor() as cursor, cursor.copy(
                "COPY entries (id, parent, path, dn, attrs) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int8", "bytea", "text", "bytea"])
            for row in self._rows:
                copy.write_row(row)
        self._rows.clear()
        self._waiting.clear()

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
