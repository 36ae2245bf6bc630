"""A reader learns of commits from the WAL index's header (`wal_watch`).

- The stamp stays the same while nothing is committed and moves with every
  commit, from this process or another.
- `refresh` is False while nothing was committed and True after each
  commit by another process, however many refreshes come between.
- Watches of one file share one descriptor, still open after a backend
  closed (closing it would drop this process's SQLite locks on the index,
  `wal_watch`); the reader left open goes on seeing another process's
  commits and reads every entry as it now is.
- A database whose index file was deleted (every connection closed) and
  made again is watched anew, as it is after a bulk load, which leaves the
  WAL and comes back to it.
- No index file, no watch.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from directory.backend.index_keys import EQ, IndexSpec
from directory.backend.sqlite import SQLiteBackend
from directory.backend.wal_watch import WalWatch
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
BASE = DN.parse("o=book", SCHEMA)

# Run by another process: add `count` people after the highest numbered one.
ADD_PEOPLE = """
import sys
from pathlib import Path
from directory.backend.index_keys import EQ, IndexSpec
from directory.backend.sqlite import SQLiteBackend
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.schema import Schema
schema = Schema.load([Path(sys.argv[3]) / "schema"])
backend = SQLiteBackend(Path(sys.argv[1]), schema, [IndexSpec("cn", frozenset({EQ}))])
first = backend.count()
for i in range(first, first + int(sys.argv[2])):
    with backend.transaction() as txn:
        txn.add(Entry(DN.parse(f"cn=person {i},o=book", schema),
                      {"objectclass": (b"person",), "cn": (f"person {i}".encode(),),
                       "sn": (b"x",)}))
backend.close()
"""


def open_at(path: Path) -> SQLiteBackend:
    return SQLiteBackend(path, SCHEMA, [IndexSpec("cn", frozenset({EQ}))])


def book(path: Path) -> SQLiteBackend:
    backend = open_at(path)
    with backend.transaction() as txn:
        txn.add(Entry(BASE, {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
    return backend


def add_in_another_process(path: Path, count: int) -> None:
    subprocess.run([sys.executable, "-c", ADD_PEOPLE, str(path), str(count),
                    str(Path(__file__).resolve().parents[2])], check=True, timeout=60)


def test_the_stamp_moves_with_each_commit_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v INTEGER)")
    watch = WalWatch.open(path)
    assert watch is not None
    stamps = [watch.stamp()]
    for value in range(3):
        assert watch.stamp() == stamps[-1]
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        stamps.append(watch.stamp())
    assert None not in stamps
    assert len(set(stamps)) == 4
    conn.close()


def test_refresh_is_true_after_each_commit_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    backend = book(path)
    backend.refresh()
    for _ in range(3):
        assert backend.refresh() is False
        assert backend.refresh() is False
        add_in_another_process(path, 1)
        assert backend.refresh() is True
    assert backend.count() == 4
    backend.close()


def test_watches_share_one_descriptor_left_open_when_a_backend_closes(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    reader = book(path)
    other = open_at(path)
    first, second = WalWatch.open(path), WalWatch.open(path)
    assert first is not None and second is not None
    assert first._descriptor == second._descriptor
    other.close()
    os.fstat(first._descriptor)  # still open
    for round in range(3):
        add_in_another_process(path, 5)
        assert reader.refresh() is True
        assert reader.count() == 1 + 5 * (round + 1)
        found = reader.get(DN.parse(f"cn=person {5 * round + 4},o=book", SCHEMA))
        assert found is not None and found.first("sn") == b"x"
    reader.close()


def test_a_made_again_index_is_watched_anew(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    book(path).close()
    assert not Path(f"{path}-shm").exists()
    backend = open_at(path)
    backend.refresh()
    add_in_another_process(path, 2)
    assert backend.refresh() is True
    assert backend.count() == 3
    backend.close()


def test_after_a_bulk_load_commits_are_still_seen(tmp_path: Path) -> None:
    path = tmp_path / "book.db"
    backend = open_at(path)
    with backend.transaction(bulk=True) as txn:
        txn.add(Entry(BASE, {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
    assert backend._watch is not None
    backend.refresh()
    assert backend.refresh() is False
    add_in_another_process(path, 1)
    assert backend.refresh() is True
    assert backend.count() == 2
    backend.close()


def test_no_index_file_no_watch(tmp_path: Path) -> None:
    assert WalWatch.open(tmp_path / "nothing.db") is None
