"""A reader learns of commits from the wal-index header, asking SQLite only then.

- With nothing committed since the last look, `refresh` runs no statement.
- A commit by another process (an entry changed, or only an application
  table written) is seen by the next `refresh`, and the changed entry is
  read again as it now is.
- After a bulk load switched the file to the rollback journal and back, the
  reader watches the new `-shm` file: another connection's commit is seen.
- Without a `-shm` file to watch, every look says "moved".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from directory.backend.index_keys import EQ, IndexSpec
from directory.backend.sqlite import SQLiteBackend
from directory.backend.sqlite_commits import CommitWatch
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
BASE = DN.parse("o=book", SCHEMA)
TABLES = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",)
PERSON = DN.parse("cn=person,o=book", SCHEMA)


def person(sn: bytes) -> Entry:
    return Entry(PERSON, {"objectclass": (b"person",), "cn": (b"person",), "sn": (sn,)})


def open_at(path: Path) -> SQLiteBackend:
    return SQLiteBackend(path, SCHEMA, [IndexSpec("cn", frozenset({EQ}))], tables=TABLES)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    opened = open_at(tmp_path / "book.db")
    with opened.transaction() as txn:
        txn.add(Entry(BASE, {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
        txn.add(person(b"before"))
    opened.refresh()
    yield opened
    opened.close()


def statements(backend: SQLiteBackend) -> list[str]:
    ran: list[str] = []
    backend._reader.set_trace_callback(ran.append)
    return ran


def in_another_process(path: Path, sql: str) -> None:
    subprocess.run([sys.executable, "-c", "import sqlite3, sys\n"
                    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                    "c.execute(sys.argv[2])\nc.close()", str(path), sql], check=True)


def test_refresh_without_a_commit_runs_no_statement(backend: SQLiteBackend) -> None:
    ran = statements(backend)
    assert backend.refresh() is False
    assert backend.refresh() is False
    assert ran == []


def test_another_processes_commit_is_seen(backend: SQLiteBackend) -> None:
    with backend.transaction() as txn:
        txn.replace(person(b"after"))
    backend.refresh()
    assert backend.get(PERSON) is not None
    other = open_at(backend.path)
    with other.transaction() as txn:
        txn.replace(person(b"elsewhere"))
    other.close()
    ran = statements(backend)
    assert backend.refresh() is True
    assert ran[0] == "PRAGMA data_version"
    found = backend.get(PERSON)
    assert found is not None and found.get("sn") == (b"elsewhere",)


def test_a_commit_to_an_application_table_alone_is_seen(backend: SQLiteBackend) -> None:
    in_another_process(backend.path, "INSERT INTO notes (text) VALUES ('hello')")
    assert backend.refresh() is True
    assert backend.refresh() is False


def test_after_a_bulk_load_the_new_shm_file_is_watched(backend: SQLiteBackend) -> None:
    with backend.transaction(bulk=True) as txn:
        txn.conn.execute("INSERT INTO notes (text) VALUES ('bulk')")
    backend.refresh()
    assert backend.refresh() is False
    in_another_process(backend.path, "INSERT INTO notes (text) VALUES ('after')")
    assert backend.refresh() is True


def test_without_a_shm_file_every_look_says_moved(tmp_path: Path) -> None:
    watch = CommitWatch(tmp_path / "absent.db")
    assert watch.moved() is True
    assert watch.moved() is True
    watch.close()
