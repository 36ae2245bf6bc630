"""SQLite keeps the ids its index lookups gave (`_ids`) until `refresh` sees a commit.

- A search asked twice reads the index once; after an entry it selects is
  added, by this backend's writer or by another process on the same file,
  the search finds it once `refresh` (at the start of every operation) ran.
- A lookup whose statement ran before a commit was seen is not kept: the
  next search reads the index again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from directory.backend import Param
from directory.backend.index_keys import EQ, SUB, IndexSpec
from directory.backend.sqlite import SQLiteBackend
from directory.entry import Entry
from directory.predicates import compile_filter
from directory.protocol.dn import DN
from directory.protocol.filter import parse
from directory.protocol.messages import Scope
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.search_plan import plan

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
INDEXED = (IndexSpec("cn", frozenset({EQ, SUB})), "sn")
PEOPLE = 400
# Person 0120 to 0129, and the ones added below: a prefix the planner
# looks up as one range of the equality index (`_ids`).
ASKED = "(cn=Person 012*)"
FOUND = {f"cn=Person 012{i},dc=example,dc=com" for i in range(10)}


def person(name: str) -> Entry:
    return Entry(DN.parse(f"cn={name},{SUFFIX}", SCHEMA), {
        "objectclass": (b"top", b"person"), "cn": (name.encode(),), "sn": (b"x",)})


def found(backend: SQLiteBackend, text: str) -> set[str]:
    wanted = resolve_filter(SCHEMA, parse(text))
    matches = compile_filter(SCHEMA, wanted)
    query = plan(backend.indexed, wanted, backend.estimate)
    return {str(e.dn) for e in backend.search(DN.parse(SUFFIX, SCHEMA), Scope.SUB, query)
            if matches(e)}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    opened = SQLiteBackend(tmp_path / "postings.db", SCHEMA, INDEXED)
    with opened.transaction() as txn:
        txn.add(Entry(DN.parse(SUFFIX, SCHEMA),
                      {"objectclass": (b"top", b"domain"), "dc": (b"example",)}), root=True)
        for i in range(PEOPLE):
            txn.add(person(f"Person {i:04d}"))
    opened.refresh()
    yield opened
    opened.close()


def lookups(backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The index lookups (`_ids`) the backend runs from now on."""
    statements: list[str] = []
    real = backend._reader

    class Counting:
        def execute(self, sql: str, params: Sequence[Param] = ()) -> sqlite3.Cursor:
            if sql.startswith("SELECT id FROM idx"):
                statements.append(sql)
            return real.execute(sql, params)

    monkeypatch.setattr(backend, "_reader", Counting())
    return statements


def test_a_lookup_asked_twice_reads_the_index_once(backend: SQLiteBackend,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    statements = lookups(backend, monkeypatch)
    assert found(backend, ASKED) == FOUND
    assert len(statements) == 1
    assert found(backend, ASKED) == FOUND
    assert len(statements) == 1


def test_an_entry_the_writer_adds_is_found_after_refresh(backend: SQLiteBackend) -> None:
    assert found(backend, ASKED) == FOUND
    with backend.transaction() as txn:
        txn.add(person("Person 01231"))
    assert backend.refresh()
    assert found(backend, ASKED) == {*FOUND, f"cn=Person 01231,{SUFFIX}"}


def test_an_entry_another_process_adds_is_found_after_refresh(backend: SQLiteBackend,
                                                               tmp_path: Path) -> None:
    assert found(backend, ASKED) == FOUND
    other = SQLiteBackend(tmp_path / "postings.db", SCHEMA, INDEXED)
    with other.transaction() as txn:
        txn.add(person("Person 01232"))
    other.close()
    assert backend.refresh()
    assert found(backend, ASKED) == {*FOUND, f"cn=Person 01232,{SUFFIX}"}


def test_a_lookup_read_before_a_commit_was_seen_is_not_kept(
        backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    statements = lookups(backend, monkeypatch)
    execute = backend._reader.execute

    def committed_meanwhile(sql: str, params: Sequence[Param] = ()) -> sqlite3.Cursor:
        result = execute(sql, params)
        if sql.startswith("SELECT id FROM idx"):
            with other.transaction() as txn:
                txn.add(person("Person 01233"))
            assert backend.refresh()
        return result

    other = SQLiteBackend(tmp_path / "postings.db", SCHEMA, INDEXED)
    monkeypatch.setattr(backend._reader, "execute", committed_meanwhile)
    found(backend, ASKED)
    assert len(statements) == 1
    monkeypatch.setattr(backend._reader, "execute", execute)
    found(backend, ASKED)
    assert len(statements) == 2
    found(backend, ASKED)
    assert len(statements) == 2
    assert found(backend, ASKED) == {*FOUND, f"cn=Person 01233,{SUFFIX}"}
    other.close()
