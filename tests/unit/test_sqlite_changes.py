"""Workers on one SQLite file forget only what the others changed.

- After another connection modifies, deletes or renames entries, `refresh`
  forgets exactly those: an entry nobody changed stays the cached object,
  a changed one is read again as it now is, a deleted one is gone.
- A transaction that rolls back logs nothing and takes no sequence number.
- A reader that finds the log's next number missing (pruned away) forgets
  everything, and still reads every entry as it now is.
- A commit that changed no entry (the CA's tables) forgets nothing.
- A search paused after its statement read a chunk (a scan, or entries by
  id) while a change to a later entry of the chunk is refreshed gives that
  entry as the chunk read it, and leaves no copy of it in the cache: the
  next read gives the entry as it now is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from directory.backend import IndexQuery, Presence, sqlite_changes
from directory.backend.index_keys import EQ, IndexSpec
from directory.backend.sqlite import SQLiteBackend
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
BASE = DN.parse("o=book", SCHEMA)
TABLES = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",)


def dn(i: int) -> DN:
    return DN.parse(f"cn=person {i},o=book", SCHEMA)


def person(i: int, sn: bytes = b"x") -> Entry:
    return Entry(dn(i), {"objectclass": (b"person",), "cn": (f"person {i}".encode(),),
                         "sn": (sn,)})


def open_at(path: Path) -> SQLiteBackend:
    return SQLiteBackend(path, SCHEMA, [IndexSpec("cn", frozenset({EQ}))], tables=TABLES)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SQLiteBackend, SQLiteBackend]]:
    writer, reader = open_at(tmp_path / "book.db"), open_at(tmp_path / "book.db")
    with writer.transaction() as txn:
        txn.add(Entry(BASE, {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
        for i in range(4):
            txn.add(person(i))
    reader.refresh()
    yield writer, reader
    writer.close()
    reader.close()


def cached(backend: SQLiteBackend) -> dict[int, Entry]:
    return {i: e for i in range(4) if (e := backend.get(dn(i))) is not None}


def test_only_what_changed_is_forgotten(pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    writer, reader = pair
    before = cached(reader)
    with writer.transaction() as txn:
        txn.replace(person(1, b"changed"))
        txn.delete(dn(2))
    assert reader.refresh()
    after = cached(reader)
    assert after[0] is before[0] and after[3] is before[3]
    assert after[1].attributes["sn"] == (b"changed",)
    assert 2 not in after


def test_a_rename_is_seen_at_both_names(pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    writer, reader = pair
    before = cached(reader)
    with writer.transaction() as txn:
        txn.rename(dn(3), Entry(DN.parse("cn=moved,o=book", SCHEMA), {
            "objectclass": (b"person",), "cn": (b"moved",), "sn": (b"x",)}))
    reader.refresh()
    assert reader.get(dn(3)) is None
    moved = reader.get(DN.parse("cn=moved,o=book", SCHEMA))
    assert moved is not None and moved.id == before[3].id
    assert reader.get(dn(0)) is before[0]


def test_a_rollback_logs_nothing(pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    writer, _ = pair
    seq = sqlite_changes.last(writer._writer_conn)
    with pytest.raises(RuntimeError), writer.transaction() as txn:
        txn.replace(person(1, b"never"))
        raise RuntimeError("abandoned")
    assert sqlite_changes.last(writer._writer_conn) == seq
    with writer.transaction() as txn:
        txn.replace(person(0, b"kept"))
    assert sqlite_changes.last(writer._writer_conn) == seq + 1


def test_a_pruned_log_forgets_everything(
        pair: tuple[SQLiteBackend, SQLiteBackend], tmp_path: Path) -> None:
    writer, reader = pair
    before = cached(reader)
    for sn in (b"one", b"two"):
        with writer.transaction() as txn:
            txn.replace(person(1, sn))
    other = sqlite3.connect(tmp_path / "book.db", isolation_level=None)
    other.execute("DELETE FROM changes WHERE seq = (SELECT min(seq) FROM changes "
                  "WHERE seq > (SELECT max(seq) - 2 FROM changes))")
    other.close()
    assert reader.refresh()
    after = cached(reader)
    assert after[0] is not before[0] and after[0].dn == before[0].dn
    assert after[1].attributes["sn"] == (b"two",)


def test_a_commit_without_entries_forgets_nothing(
        pair: tuple[SQLiteBackend, SQLiteBackend]) -> None:
    writer, reader = pair
    before = cached(reader)
    with writer.transaction() as txn:
        txn.records.run("INSERT INTO notes (text) VALUES (?)", ("hello",))
    assert reader.refresh()
    assert cached(reader) == before and all(cached(reader)[i] is before[i] for i in before)


@pytest.mark.parametrize("query", [None, Presence("cn")], ids=["scan", "by ids"])
def test_a_paused_search_caches_no_stale_entry(
        pair: tuple[SQLiteBackend, SQLiteBackend], query: IndexQuery | None) -> None:
    writer, reader = pair
    search = reader.search(BASE, Scope.SUB, query)
    next(search)
    with writer.transaction() as txn:
        txn.replace(person(3, b"changed"))
    assert reader.refresh()
    rest = {e.dn: e for e in search}
    assert rest[dn(3)].attributes["sn"] == (b"x",)
    again = {e.dn: e for e in reader.search(BASE, Scope.SUB, query)}
    assert again[dn(3)].attributes["sn"] == (b"changed",)
