"""Bulk inserts (`Transaction.insert_many`, directory/backend/postings.py),
on SQLite and on PostgreSQL (tests/pg_cluster.py).

- Postings group a batch's index rows by row: each entry's place once per
  row, in order; `places` reads them back and `merge` joins two of one batch.
- Entries stored by `insert_many`, in several batches and with rows that
  cross batches, have exactly the index rows `add` gives the same
  entries, also when SQLite writes the waiting rows of keys several
  entries hold before the end, and the rows of single entries too.
- A refused entry names its place in the batch: an entry that exists is
  entryAlreadyExists, one without a parent noSuchObject, as `insert` says.
- SQLite leaves out the grams most entries of a load of `MIN_UNKEPT` or
  more hold, names them in idx_unkept, and searches for them (planned
  with the backend's estimates, as every search is) still find every
  entry; the other grams keep all their rows, and a rebuilt index keeps
  every gram again.
- SQLite writes a bulk transaction with a rollback journal when no other
  connection has the file open, and with the WAL when one has; after it,
  committed or not, the file is in WAL mode again and the backend reads.
- A SQLite bulk load into a directory it makes nearly whole writes the
  index statistics: the heavy keys a full count finds, each counted to
  within the entries there before, also when the shared rows of its
  batches are written several times; into a directory of more entries
  than its counts may be off by, it leaves the statistics as they were.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from directory.backend import Backend, EntryRefused, NewEntry
from directory.backend import sqlite as sqlite_backend
from directory.backend.index_keys import EQ, SUB, IndexSpec
from directory.backend.index_stats import MIN_UNKEPT, bound
from directory.backend.paths import path_of
from directory.backend.postgres import PostgresBackend
from directory.backend.postings import Gathering, LeftOut, Postings, merge, places
from directory.backend.sqlite import SQLiteBackend
from directory.entry import Entry, serialize
from directory.predicates import compile_filter
from directory.protocol.dn import DN
from directory.protocol.filter import parse
from directory.protocol.messages import Scope
from directory.protocol.results import ResultCode
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.search_plan import plan
from tests import pg_cluster

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
INDEXED = (IndexSpec("cn", frozenset({EQ, SUB})), "sn", IndexSpec("mail", frozenset({EQ, SUB})),
           "uid")


def test_postings_group_rows_by_row_each_place_once() -> None:
    gathering = Gathering()
    gathering.add(0, "cn", [b"abc", b"bcd", b"abc"])
    gathering.add(1, "cn", [b"abc"])
    gathering.add(1, "sn", [b"x"])
    gathering.add(3, "cn", [b"abc", b"zzz"])
    postings = gathering.postings()
    assert postings == {"cn": {b"abc": "0,1,3", b"bcd": 0, b"zzz": 3}, "sn": {b"x": 1}}
    assert [places(held) for held in postings["cn"].values()] == [[0, 1, 3], [0], [3]]
    merge(postings, {"cn": {b"bcd": "2,4"}, "uid": {b"u": 5}})
    assert postings == {"cn": {b"abc": "0,1,3", b"bcd": "0,2,4", b"zzz": 3},
                        "sn": {b"x": 1}, "uid": {b"u": 5}}


def test_a_gathering_leaves_out_the_keys_it_is_told_of_that_index_only() -> None:
    gathering = Gathering({"cn": frozenset({b"abc"})})
    gathering.add(0, "cn", [b"abc", b"bcd"])
    gathering.add(1, "sn", [b"abc"])
    assert gathering.postings() == {"cn": {b"bcd": 0}, "sn": {b"abc": 1}}


def dn(text: str) -> DN:
    return DN.parse(text, SCHEMA)


def person(i: int) -> Entry:
    # Shared grams ("per", "son"), shared equality keys (sn), unique ones (uid, mail).
    return Entry(dn(f"uid=person{i},{PEOPLE}"), {
        "objectclass": (b"top", b"person", b"organizationalPerson", b"inetOrgPerson"),
        "uid": (f"person{i}".encode(),), "cn": (f"Person {i}".encode(), f"P {i % 7}".encode()),
        "sn": (f"S{i % 5}".encode(),), "mail": (f"person{i}@example.com".encode(),)})


def base_entries() -> list[Entry]:
    return [Entry(dn(SUFFIX), {"objectclass": (b"top", b"domain"), "dc": (b"example",)}),
            Entry(dn(PEOPLE), {"objectclass": (b"top", b"organizationalUnit"),
                               "ou": (b"people",)})]


Opener = Callable[[str], Backend]


@pytest.fixture(params=["sqlite", "postgresql"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a fresh database of the backend by name."""
    def backend(name: str) -> Backend:
        if request.param == "sqlite":
            return SQLiteBackend(tmp_path / f"{name}.db", SCHEMA, INDEXED)
        cluster: pg_cluster.Cluster = request.getfixturevalue("cluster")
        return PostgresBackend(cluster.database(name), SCHEMA, INDEXED, 10_000, 64 << 20)

    made: list[Backend] = []

    def make(name: str) -> Backend:
        made.append(backend(name))
        return made[-1]

    yield make
    for each in made:
        each.close()


def index_of(backend: Backend) -> set[tuple[str, bytes, str]]:
    """Every index row, with the DN of its entry instead of the id."""
    found: set[tuple[str, bytes, str]] = set()
    with backend.reading() as records:
        for attr, key, dn_text in records.rows(
                "SELECT i.attr, i.key, e.dn FROM idx i JOIN entries e ON e.id = i.id"):
            found.add((attr, bytes(key), dn_text))
    return found


def batch(backend: Backend, entries: list[Entry],
          left_out: LeftOut | None = None,
          ) -> tuple[list[NewEntry], Postings]:
    gathering = Gathering(left_out)
    for place, entry in enumerate(entries):
        backend.gather(entry.attributes, place, gathering)
    return [NewEntry(str(e.dn), path_of(e.dn), path_of(e.dn.parent), serialize(e))
            for e in entries], gathering.postings()


def test_insert_many_indexes_as_add_does(opened: Opener,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_backend, "SHARED_BATCH", 40)
    monkeypatch.setattr(sqlite_backend, "SINGLE_BATCH", 60)
    added, bulk = opened("added"), opened("bulk")
    people = [person(i) for i in range(120)]
    for backend in (added, bulk):
        with backend.transaction() as txn:
            txn.add(base_entries()[0], root=True)
            txn.add(base_entries()[1])
    with added.transaction() as txn:
        for entry in people:
            txn.add(entry)
    with bulk.transaction() as txn:
        for start in range(0, len(people), 25):
            txn.insert_many(*batch(bulk, people[start:start + 25]))
    rows = index_of(bulk)
    assert rows == index_of(added)
    assert ("sn", b"s3", f"uid=person118,{PEOPLE}") in rows
    assert ("cn:sub", b"son", f"uid=person0,{PEOPLE}") in rows
    bulk.refresh()
    stored = bulk.get(dn(f"uid=person77,{PEOPLE}"))
    assert stored is not None and stored.attributes == people[77].attributes


@pytest.mark.parametrize("why, dn_text, code", [
    ("exists", f"uid=person1,{PEOPLE}", ResultCode.ENTRY_ALREADY_EXISTS),
    ("no parent", f"uid=person9,ou=nowhere,{SUFFIX}", ResultCode.NO_SUCH_OBJECT),
])
def test_a_refused_entry_names_its_place(opened: Opener, why: str, dn_text: str,
                                         code: ResultCode) -> None:
    backend = opened("refused")
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
        txn.add(base_entries()[1])
        txn.add(person(1))
    refused = Entry(dn(dn_text), person(9).attributes)
    with pytest.raises(EntryRefused) as raised, backend.transaction() as txn:
        txn.insert_many(*batch(backend, [person(2), person(3), refused, person(4)]))
    assert (raised.value.place, raised.value.error.code) == (2, code)
    backend.refresh()
    assert backend.get(dn(f"uid=person2,{PEOPLE}")) is None


def found(backend: Backend, text: str) -> set[str]:
    wanted = resolve_filter(SCHEMA, parse(text))
    matches = compile_filter(SCHEMA, wanted)
    query = plan(backend.indexed, wanted, backend.estimate)
    return {str(e.dn) for e in backend.search(dn(PEOPLE), Scope.SUB, query) if matches(e)}


def test_a_bulk_load_leaves_out_the_grams_most_entries_hold(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "unkept.db", SCHEMA, INDEXED)
    people = [person(i) for i in range(MIN_UNKEPT + 200)]
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
        txn.add(base_entries()[1])
    with backend.transaction() as txn:
        for start in range(0, len(people), 100):
            txn.insert_many(*batch(backend, people[start:start + 100]))
    with backend.reading() as records:
        unkept = {(a, bytes(k)) for a, k in records.rows("SELECT attr, key FROM idx_unkept")}
    assert {("mail:sub", b"exa"), ("mail:sub", b"per"), ("cn:sub", b"son")} <= unkept
    assert ("mail:sub", b"n12") not in unkept
    rows = index_of(backend)
    assert not {(a, k) for a, k, _ in rows} & unkept
    assert ("mail:sub", b"n12", f"uid=person12,{PEOPLE}") in rows
    backend.close()
    backend = SQLiteBackend(tmp_path / "unkept.db", SCHEMA, INDEXED)
    assert len(found(backend, "(mail=*@example.com)")) == len(people)
    assert found(backend, "(mail=*son1100@exa*)") == {f"uid=person1100,{PEOPLE}"}
    assert found(backend, "(cn=*son 1199*)") == {f"uid=person1199,{PEOPLE}"}
    backend.close()
    rebuilt = SQLiteBackend(tmp_path / "unkept.db", SCHEMA, INDEXED[:2])
    with rebuilt.reading() as records:
        assert records.rows("SELECT attr, key FROM idx_unkept") == []
    assert ("cn:sub", b"son", f"uid=person7,{PEOPLE}") in index_of(rebuilt)
    rebuilt.close()


def test_batches_told_the_keys_left_out_store_what_the_others_do(tmp_path: Path) -> None:
    people = [person(i) for i in range(MIN_UNKEPT + 200)]
    stored = []
    for told in (False, True):
        backend = SQLiteBackend(tmp_path / f"told-{told}.db", SCHEMA, INDEXED)
        with backend.transaction() as txn:
            txn.add(base_entries()[0], root=True)
            txn.add(base_entries()[1])
        with backend.transaction() as txn:
            assert txn.left_out() == {}
            for start in range(0, len(people), 100):
                txn.insert_many(*batch(backend, people[start:start + 100],
                                       txn.left_out() if told else None))
                if start == 1000:
                    txn.flush()
                    assert b"exa" in txn.left_out()["mail:sub"]
            left_out = txn.left_out()
        with backend.reading() as records:
            unkept = {(a, bytes(k)) for a, k in records.rows("SELECT attr, key FROM idx_unkept")}
        assert {(a, k) for a, keys in left_out.items() for k in keys} == unkept
        stored.append((index_of(backend), unkept))
        backend.close()
    assert stored[0] == stored[1]


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        mode: str = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return mode


def load_people(backend: SQLiteBackend, path: Path) -> bool:
    """Base entries, then people in one bulk transaction; whether SQLite
    wrote them with a rollback journal (the file beside the database)."""
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
        txn.add(base_entries()[1])
    with backend.transaction(bulk=True) as txn:
        txn.insert_many(*batch(backend, [person(i) for i in range(50)]))
        txn.flush()
        journaled = path.with_name(path.name + "-journal").exists()
    return journaled


def test_a_bulk_load_alone_writes_with_a_rollback_journal_then_the_wal_again(
        tmp_path: Path) -> None:
    path = tmp_path / "alone.db"
    backend = SQLiteBackend(path, SCHEMA, INDEXED)
    assert load_people(backend, path)
    assert journal_mode(path) == "wal"
    assert backend.get(dn(f"uid=person49,{PEOPLE}")) is not None
    assert found(backend, "(cn=*son 4*)") == {
        f"uid=person{i},{PEOPLE}" for i in (4, *range(40, 50))}
    backend.close()


def test_a_bulk_load_beside_another_connection_keeps_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    backend = SQLiteBackend(path, SCHEMA, INDEXED)
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT count(*) FROM entries").fetchone()[0] == 0
        assert not load_people(backend, path)
        assert other.execute("SELECT count(*) FROM entries").fetchone()[0] == 52
    assert journal_mode(path) == "wal"
    assert backend.get(dn(f"uid=person49,{PEOPLE}")) is not None
    backend.close()


def test_a_failed_bulk_load_leaves_nothing_and_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "failed.db"
    backend = SQLiteBackend(path, SCHEMA, INDEXED)
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
    with pytest.raises(EntryRefused), backend.transaction(bulk=True) as txn:
        txn.insert_many(*batch(backend, [base_entries()[1], person(1)]))
        txn.insert_many(*batch(backend, [person(1)]))
    assert backend.count() == 1
    assert journal_mode(path) == "wal"
    backend.close()


def statistics(backend: SQLiteBackend) -> tuple[set[tuple[str, bytes, int]], str]:
    """The heavy keys' counts as kept, and the size they were counted for."""
    with backend.reading() as records:
        kept = {(a, bytes(k), n) for a, k, n in records.rows("SELECT * FROM idx_stats")}
        size = records.row("SELECT value FROM meta WHERE name = 'stats'")
    assert size is not None
    return kept, size[0]


def full_count(backend: SQLiteBackend, entries: int) -> set[tuple[str, bytes, int]]:
    with backend.reading() as records:
        return {(a, bytes(k), n) for a, k, n in records.rows(
            "SELECT attr, key, count(*) FROM idx GROUP BY attr, key HAVING count(*) > ?",
            (bound(entries),))}


def bulk_load(backend: SQLiteBackend, people: list[Entry]) -> None:
    with backend.transaction(bulk=True) as txn:
        for start in range(0, len(people), 50):
            txn.insert_many(*batch(backend, people[start:start + 50]))


def test_a_bulk_load_writes_the_statistics_a_full_count_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_backend, "SHARED_BATCH", 40)
    backend = SQLiteBackend(tmp_path / "counted.db", SCHEMA, INDEXED)
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
        txn.add(base_entries()[1])
    bulk_load(backend, [person(i) for i in range(300)])
    kept, size = statistics(backend)
    assert size == "302"
    assert ("sn", b"s1", 60) in kept
    counted = {(a, k): n for a, k, n in full_count(backend, 302)}
    assert {(a, k): n for a, k, n in kept}.keys() == counted.keys()
    assert all(0 <= counted[a, k] - n <= 2 for a, k, n in kept)
    backend.close()


def test_a_bulk_load_into_a_fuller_directory_leaves_the_statistics(tmp_path: Path) -> None:
    path = tmp_path / "fuller.db"
    backend = SQLiteBackend(path, SCHEMA, INDEXED)
    with backend.transaction() as txn:
        txn.add(base_entries()[0], root=True)
        txn.add(base_entries()[1])
        for i in range(300):
            txn.add(person(i))
    backend.close()
    backend = SQLiteBackend(path, SCHEMA, INDEXED)
    before = statistics(backend)
    assert before[1] == "302"
    bulk_load(backend, [person(i) for i in range(300, 320)])
    assert statistics(backend) == before
    backend.close()
