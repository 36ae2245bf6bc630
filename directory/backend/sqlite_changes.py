"""Which entries other connections changed: SQLite's change log for caches.

- Every write transaction that changed stored entries adds one row to
  `changes`, in the same transaction: a sequence number and the ids it
  changed. So a process that sees a commit (SQLite's data_version moved)
  forgets exactly those entries from its cache instead of all of them:
  its own writer's commits (password upgrades, ppolicy state) and the
  other workers' no longer empty the cache of every worker.
- Sequence numbers are contiguous: a rolled-back transaction takes none,
  and pruning drops only the oldest rows. A reader that finds the number
  after the last it saw missing fell more than `KEPT` commits behind and
  forgets everything, as it did on every commit before.
- A transaction that changed more than `MAX_IDS` entries (a subtree
  rename) logs no ids: readers forget everything.
- New entries are not logged: no cache holds an id before it exists.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Set

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, ids BLOB);
"""
KEPT = 10_000
MAX_IDS = 10_000
# The log is pruned once every this many logged commits.
PRUNE_EVERY = 1000


def log(conn: sqlite3.Connection, ids: Set[int]) -> None:
    """Record, inside the caller's transaction, that `ids` changed."""
    if not ids:
        return
    packed = array("q", ids).tobytes() if len(ids) <= MAX_IDS else None
    seq = conn.execute("INSERT INTO changes (ids) VALUES (?) RETURNING seq",
                       (packed,)).fetchone()[0]
    if seq % PRUNE_EVERY == 0:
        conn.execute("DELETE FROM changes WHERE seq <= ?", (seq - KEPT,))


def last(conn: sqlite3.Connection) -> int:
    """The newest sequence number logged."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])


def since(conn: sqlite3.Connection, seen: int) -> tuple[int, set[int] | None]:
    """The newest sequence number and the ids changed after `seen`; None
    for the ids when they are not all known (forget everything)."""
    rows = conn.execute("SELECT seq, ids FROM changes WHERE seq > ? ORDER BY seq",
                        (seen,)).fetchall()
    if not rows:
        return seen, set()
    changed: set[int] | None = set()
    expected = seen + 1
    for seq, packed in rows:
        if changed is not None and seq == expected and packed is not None:
            changed.update(array("q", packed))
        else:
            changed = None
        expected = seq + 1
    return rows[-1][0], changed
