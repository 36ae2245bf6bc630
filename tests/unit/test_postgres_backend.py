"""The PostgreSQL backend against a real PostgreSQL (tests/pg_cluster.py).

- Reads: `get`, the four search scopes (one level and subtree also across
  the chunks a scan reads), every kind of index query, and an
  index key longer than a B-tree entry holds; estimates count prefixes and
  presence up to a quarter of the directory, and put a key the statistics
  do not name at their bound, from memory: with the read connection gone
  (test_substring_index.py has the statistics of both backends).
- Writes: a transaction adding `ANALYZE_AFTER` entries gathers statistics;
  a renamed entry takes its subtree along; a failed savepoint
  leaves nothing behind and the transaction usable; a duplicate add is
  entryAlreadyExists and a missing parent noSuchObject, both leaving the
  transaction usable; an entry with children cannot be deleted.
- `Records` in the portable dialect: RETURNING id, rowcount, ON CONFLICT
  upserts, `?` and `%` inside literals; the application's tables are
  created at the first open only, again when they change; the index is
  rebuilt when the indexed attributes change.
- Two backends on one database (two front ends): a commit through one is
  seen by the other after `refresh()`, never from a stale cache, also
  when the commit is too big to name its entries, and when the other's
  listener lost its connection; an entry cached and not changed stays
  cached. Reads go on after the server dropped the read connection, and
  so do writes after it dropped the writer's between two transactions
  (also when it took no connections for a while); one dropped inside a
  transaction fails that transaction only. Two
  transactions modifying one entry wait for each other, so neither update
  is lost.
- A search paused after its scan read a chunk while a change to a later
  entry of the chunk is refreshed gives that entry as the chunk read it,
  and leaves no copy of it in the cache: the next read gives the entry as
  it now is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from directory.backend import Equal, IndexQuery, Intersection, Prefix, Presence, Union
from directory.backend.candidates import SCAN_CHUNK
from directory.backend.index_stats import MIN_HEAVY
from directory.backend.postgres import ANALYZE_AFTER, MAX_KEY, PostgresBackend
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema
from tests import pg_cluster

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
TABLES = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
          "UNIQUE, body BLOB, hits INTEGER NOT NULL DEFAULT 0)",)
INDEXED = ("cn", "sn", "mail")


def dn(text: str) -> DN:
    return DN.parse(text, SCHEMA)


def person(text: str, **attributes: str) -> Entry:
    rdn_value = text.split(",", 1)[0].split("=", 1)[1]
    values = {"objectClass": ("top", "person", "inetOrgPerson"), "cn": (rdn_value,),
              "sn": (rdn_value,), **{k: (v,) for k, v in attributes.items()}}
    return Entry(dn(text), {k: tuple(v.encode() for v in vs) for k, vs in values.items()})


def unit(text: str) -> Entry:
    value = text.split(",", 1)[0].split("=", 1)[1]
    return Entry(dn(text), {"objectClass": (b"top", b"organizationalUnit"),
                            "ou": (value.encode(),)})


@pytest.fixture
def url(cluster: pg_cluster.Cluster) -> str:
    return cluster.database("backend")


def opened(url: str, indexed: tuple[str, ...] = INDEXED,
           tables: tuple[str, ...] = TABLES) -> PostgresBackend:
    return PostgresBackend(url, SCHEMA, indexed, 10_000, 64 << 20, tables)


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    opened_backend = opened(url)
    with opened_backend.transaction() as txn:
        txn.add(Entry(dn(SUFFIX), {"objectClass": (b"top", b"domain"), "dc": (b"example",)}),
                root=True)
        txn.add(unit(f"ou=people,{SUFFIX}"))
        txn.add(unit(f"ou=staff,ou=people,{SUFFIX}"))
        txn.add(person(f"cn=alice,ou=people,{SUFFIX}", mail="alice@example.com"))
        txn.add(person(f"cn=bob,ou=staff,ou=people,{SUFFIX}", mail="bob@example.com"))
        txn.add(person(f"cn=carol,ou=staff,ou=people,{SUFFIX}"))
    yield opened_backend
    opened_backend.close()


@pytest.fixture
def other(backend: PostgresBackend, url: str) -> Iterator[PostgresBackend]:
    """A second front end on the same database."""
    second = opened(url)
    yield second
    second.close()


def names(entries: Iterator[Entry]) -> list[str]:
    return sorted(str(e.dn) for e in entries)


def sn(backend: PostgresBackend, text: str) -> bytes | None:
    entry = backend.get(dn(text))
    assert entry is not None
    return entry.first("sn")


def set_sn(backend: PostgresBackend, text: str, value: str) -> None:
    with backend.transaction() as txn:
        entry = txn.get(dn(text))
        assert entry is not None
        txn.replace(entry.with_attributes({**entry.attributes, "sn": (value.encode(),)}))
    backend.refresh()


def _terminate(url: str, conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """End the session of `conn` on the server, as a restart would, and
    wait until it is gone."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s, 30000)",
                            (conn.info.backend_pid,)).fetchone()
    assert row == (True,)


PEOPLE = f"ou=people,{SUFFIX}"
ALICE = f"cn=alice,{PEOPLE}"
BOB = f"cn=bob,ou=staff,{PEOPLE}"
CAROL = f"cn=carol,ou=staff,{PEOPLE}"
STAFF = f"ou=staff,{PEOPLE}"

SCOPES = [
    (Scope.BASE, [PEOPLE]),
    (Scope.ONE, [ALICE, STAFF]),
    (Scope.SUB, [ALICE, BOB, CAROL, PEOPLE, STAFF]),
    (Scope.CHILDREN, [ALICE, BOB, CAROL, STAFF]),
]


def test_get_reads_an_entry(backend: PostgresBackend) -> None:
    entry = backend.get(dn(ALICE.upper()))
    assert entry is not None and entry.first("mail") == b"alice@example.com"
    assert backend.get(dn(f"cn=nobody,{PEOPLE}")) is None


@pytest.mark.parametrize("scope, expected", SCOPES)
def test_search_scopes(backend: PostgresBackend, scope: Scope, expected: list[str]) -> None:
    assert names(backend.search(dn(PEOPLE), scope, None)) == sorted(expected)


def test_one_level_below_the_root_gives_the_naming_contexts(backend: PostgresBackend) -> None:
    assert names(backend.search(DN.ROOT, Scope.ONE, None)) == [SUFFIX]


def test_scans_cross_their_chunks(backend: PostgresBackend) -> None:
    crowd = [f"cn=p{i:04d},ou=staff,{PEOPLE}" for i in range(2 * SCAN_CHUNK + 5)]
    with backend.transaction() as txn:
        for text in crowd:
            txn.add(person(text))
    backend.refresh()
    staff = [f"ou=staff,{PEOPLE}", BOB, CAROL, *crowd]
    one = [str(e.dn) for e in backend.search(dn(f"ou=staff,{PEOPLE}"), Scope.ONE, None)]
    assert sorted(one) == sorted(staff[1:]) and len(one) == len(set(one))
    sub = [str(e.dn) for e in backend.search(dn(PEOPLE), Scope.SUB, None)]
    assert sorted(sub) == sorted([PEOPLE, ALICE, *staff]) and len(sub) == len(set(sub))


def test_a_paused_search_caches_no_stale_entry(backend: PostgresBackend) -> None:
    assert sn(backend, CAROL) == b"carol"
    search = backend.search(dn(PEOPLE), Scope.SUB, None)
    next(search)
    set_sn(backend, CAROL, "changed")
    rest = {str(e.dn): e for e in search}
    assert rest[CAROL].first("sn") == b"carol"
    assert sn(backend, CAROL) == b"changed"


QUERIES = [
    ("equal", Equal("mail", b"bob@example.com"), [BOB]),
    ("prefix", Prefix("cn", b"ca"), [CAROL]),
    ("presence", Presence("mail"), [ALICE, BOB]),
    ("intersection", Intersection((Presence("mail"), Prefix("cn", b"b"))), [BOB]),
    ("union", Union((Equal("cn", b"alice"), Equal("cn", b"carol"))), [ALICE, CAROL]),
    ("keys and a union intersected",
     Intersection((Presence("mail"), Union((Prefix("cn", b"a"), Prefix("cn", b"c"))),
                   Prefix("cn", b"al"))), [ALICE]),
]


@pytest.mark.parametrize("why, query, expected", QUERIES)
def test_index_queries(backend: PostgresBackend, why: str, query: IndexQuery,
                       expected: list[str]) -> None:
    assert names(backend.search(dn(SUFFIX), Scope.SUB, query)) == sorted(expected)


ESTIMATES = [
    ("every entry", Presence("objectclass"), 46),
    ("a key without statistics: the bound", Equal("cn", b"alice"), MIN_HEAVY),
    ("a prefix", Prefix("cn", b"user1"), 11),
    ("an intersection: its smallest part", Intersection((Presence("mail"), Prefix("cn", b"b"))),
     1),
    ("a union: the sum of its parts", Union((Equal("cn", b"alice"), Prefix("cn", b"user1"))),
     MIN_HEAVY + 11),
    ("counted up to a quarter of the directory", Presence("sn"), 46 // 4 + 1),
]


@pytest.mark.parametrize("why, query, expected", ESTIMATES)
def test_estimates(backend: PostgresBackend, why: str, query: IndexQuery,
                   expected: int) -> None:
    with backend.transaction() as txn:
        for i in range(40):
            txn.add(person(f"cn=user{i},{PEOPLE}"))
    backend.refresh()
    assert backend.estimate(query) == expected


def test_an_equal_estimate_costs_no_round_trip(backend: PostgresBackend, url: str) -> None:
    _terminate(url, backend._reader)
    assert backend.estimate(Equal("cn", b"alice")) == MIN_HEAVY
    with pytest.raises(psycopg.OperationalError):
        backend.estimate(Prefix("cn", b"al"))


def test_index_queries_keep_to_the_scope(backend: PostgresBackend) -> None:
    assert names(backend.search(dn(STAFF), Scope.ONE, Presence("mail"))) == [BOB]


def test_an_index_key_longer_than_a_btree_entry_is_found(backend: PostgresBackend) -> None:
    long_mail = "x" * (3 * MAX_KEY) + "@example.com"
    with backend.transaction() as txn:
        txn.add(person(f"cn=long,{PEOPLE}", mail=long_mail))
        txn.add(person(f"cn=longer,{PEOPLE}", mail=long_mail + "x"))
    found = backend.search(dn(SUFFIX), Scope.SUB, Equal("mail", long_mail.encode()))
    # A superset: the caller's filter tells the two apart.
    assert names(found) == [f"cn=long,{PEOPLE}", f"cn=longer,{PEOPLE}"]


def _analyzed(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {name for (name,) in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")}


def test_a_bulk_load_gathers_statistics(backend: PostgresBackend, url: str) -> None:
    with backend.transaction() as txn:
        for i in range(ANALYZE_AFTER - 1):
            txn.add(person(f"cn=few{i},{PEOPLE}"))
    few = _analyzed(url)
    with backend.transaction() as txn:
        for i in range(ANALYZE_AFTER):
            txn.add(person(f"cn=many{i},{PEOPLE}"))
    assert (few, _analyzed(url)) == (set(), {"entries", "idx"})


def test_rename_moves_the_subtree(backend: PostgresBackend) -> None:
    staff = backend.get(dn(STAFF))
    assert staff is not None
    with backend.transaction() as txn:
        new = dn(f"ou=crew,{SUFFIX}")
        txn.rename(dn(STAFF), Entry(new, {**staff.attributes, "ou": (b"staff", b"crew")}))
    backend.refresh()
    assert backend.get(dn(STAFF)) is None and backend.get(dn(BOB)) is None
    assert names(backend.search(dn(f"ou=crew,{SUFFIX}"), Scope.SUB, None)) == [
        f"cn=bob,ou=crew,{SUFFIX}", f"cn=carol,ou=crew,{SUFFIX}", f"ou=crew,{SUFFIX}"]
    assert names(backend.search(dn(SUFFIX), Scope.ONE, None)) == [
        f"ou=crew,{SUFFIX}", PEOPLE]


def test_a_failed_savepoint_leaves_nothing(backend: PostgresBackend) -> None:
    with backend.transaction() as txn:
        with pytest.raises(LDAPError), txn.savepoint():
            txn.add(person(f"cn=dave,{PEOPLE}", mail="dave@example.com"))
            txn.add(person(f"cn=eve,ou=nowhere,{SUFFIX}"))
        with txn.savepoint():
            txn.add(person(f"cn=frank,{PEOPLE}"))
    backend.refresh()
    assert backend.get(dn(f"cn=dave,{PEOPLE}")) is None
    assert backend.get(dn(f"cn=frank,{PEOPLE}")) is not None
    assert list(backend.search(dn(SUFFIX), Scope.SUB, Equal("mail", b"dave@example.com"))) == []


def test_duplicate_add_is_entry_already_exists(backend: PostgresBackend) -> None:
    with backend.transaction() as txn:
        with pytest.raises(LDAPError) as raised:
            txn.add(person(ALICE))
        txn.add(person(f"cn=grace,{PEOPLE}"))
    assert raised.value.code == ResultCode.ENTRY_ALREADY_EXISTS
    assert backend.get(dn(f"cn=grace,{PEOPLE}")) is not None


def test_missing_parent_is_no_such_object(backend: PostgresBackend) -> None:
    with backend.transaction() as txn:
        with pytest.raises(LDAPError) as raised:
            txn.add(person(f"cn=heidi,ou=nowhere,{SUFFIX}"))
        txn.add(person(f"cn=ivan,{PEOPLE}"))
    assert raised.value.code == ResultCode.NO_SUCH_OBJECT
    assert backend.get(dn(f"cn=ivan,{PEOPLE}")) is not None


def test_an_entry_with_children_cannot_be_deleted(backend: PostgresBackend) -> None:
    with backend.transaction() as txn:
        with pytest.raises(LDAPError) as raised:
            txn.delete(dn(STAFF))
        txn.delete(dn(CAROL))
    backend.refresh()
    assert raised.value.code == ResultCode.NOT_ALLOWED_ON_NON_LEAF
    assert backend.get(dn(STAFF)) is not None and backend.get(dn(CAROL)) is None


def test_records_speak_the_portable_dialect(backend: PostgresBackend) -> None:
    upsert = ("INSERT INTO notes (name, body) VALUES (?, ?) ON CONFLICT (name) "
              "DO UPDATE SET hits = notes.hits + 1, body = excluded.body")
    with backend.transaction() as txn:
        first = txn.records.row("INSERT INTO notes (name, body) VALUES (?, ?) RETURNING id",
                                ("a", b"\x00one"))
        second = txn.records.row("INSERT INTO notes (name, body) VALUES (?, ?) RETURNING id",
                                 ("b?%", b"two"))
        txn.records.run(upsert, ("a", b"\x00uno"))
        changed = txn.records.run("UPDATE notes SET hits = hits + 10 WHERE name LIKE 'b?%'")
    assert first is not None and second is not None and int(second[0]) > int(first[0]) > 0
    assert changed == 1
    with backend.reading() as records:
        assert records.rows("SELECT name, body, hits FROM notes ORDER BY name") == [
            ("a", b"\x00uno", 1), ("b?%", b"two", 10)]
        assert records.row("SELECT count(*) FROM notes WHERE name = ?", ("a",)) == (1,)


def test_records_roll_back_with_the_transaction(backend: PostgresBackend) -> None:
    with pytest.raises(RuntimeError), backend.transaction() as txn:
        txn.records.run("INSERT INTO notes (name) VALUES (?)", ("gone",))
        txn.add(person(f"cn=judy,{PEOPLE}"))
        raise RuntimeError("the caller's work failed")
    with backend.reading() as records:
        assert records.rows("SELECT name FROM notes") == []
    assert backend.get(dn(f"cn=judy,{PEOPLE}")) is None


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _drop(url: str, table: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")


def test_tables_are_created_at_the_first_open_only(backend: PostgresBackend, url: str) -> None:
    assert {"entries", "idx", "meta", "generation", "notes"} <= _tables(url)
    _drop(url, "notes")
    opened(url).close()
    assert "notes" not in _tables(url)
    extra = "CREATE TABLE IF NOT EXISTS extra (id INTEGER PRIMARY KEY, data BLOB)"
    opened(url, tables=(*TABLES, extra)).close()
    assert {"notes", "extra"} <= _tables(url)


def test_front_ends_opening_together_create_the_tables_once(url: str) -> None:
    backends: list[PostgresBackend] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            backends.append(opened(url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened_backend in backends:
        opened_backend.close()
    assert (errors, len(backends)) == ([], 4)
    assert "notes" in _tables(url)


def test_the_index_is_rebuilt_when_its_attributes_change(backend: PostgresBackend,
                                                         url: str) -> None:
    with backend.transaction() as txn:
        txn.add(person(f"cn=kim,{PEOPLE}", title="boss"))
    query = Equal("title", b"boss")
    reopened = opened(url, (*INDEXED, "title"))
    try:
        assert names(reopened.search(dn(SUFFIX), Scope.SUB, query)) == [f"cn=kim,{PEOPLE}"]
    finally:
        reopened.close()


def test_a_commit_on_one_front_end_is_seen_by_the_other(backend: PostgresBackend,
                                                       other: PostgresBackend) -> None:
    other.refresh()
    assert sn(other, ALICE) == b"alice"
    set_sn(backend, ALICE, "changed")
    assert other.refresh() is True
    assert sn(other, ALICE) == b"changed"
    with backend.transaction() as txn:
        txn.add(person(f"cn=leo,{PEOPLE}", mail="leo@example.com"))
    other.refresh()
    assert names(other.search(dn(SUFFIX), Scope.SUB, Equal("mail", b"leo@example.com"))) == [
        f"cn=leo,{PEOPLE}"]


def test_refresh_without_commits_keeps_the_cache(backend: PostgresBackend,
                                                 other: PostgresBackend) -> None:
    other.refresh()
    first = other.get(dn(ALICE))
    assert other.refresh() is False
    assert other.get(dn(ALICE)) is first


def _listener_caught_up(backend: PostgresBackend) -> None:
    """Wait until the listener has queued a notification (it comes within
    milliseconds; the deadline only keeps a broken listener from hanging)."""
    deadline = time.monotonic() + 30
    while not backend._changes:
        assert time.monotonic() < deadline, "no notification arrived"
        time.sleep(0.01)


def test_notified_commits_evict_only_what_they_changed(backend: PostgresBackend,
                                                       other: PostgresBackend) -> None:
    other.refresh()
    kept, changed = other.get(dn(ALICE)), other.get(dn(BOB))
    set_sn(backend, BOB, "moved")
    _listener_caught_up(other)
    assert other.refresh() is True
    assert other.get(dn(ALICE)) is kept
    assert other.get(dn(BOB)) is not changed and sn(other, BOB) == b"moved"


def test_a_commit_too_big_to_name_its_entries_is_seen(backend: PostgresBackend,
                                                      other: PostgresBackend) -> None:
    with backend.transaction() as txn:
        for i in range(2000):
            txn.add(person(f"cn=user{i},{PEOPLE}"))
    other.refresh()
    assert sn(other, f"cn=user7,{PEOPLE}") == b"user7"
    with backend.transaction() as txn:
        for i in range(2000):
            entry = txn.get(dn(f"cn=user{i},{PEOPLE}"))
            assert entry is not None
            txn.replace(entry.with_attributes({**entry.attributes, "sn": (b"renamed",)}))
    _listener_caught_up(other)
    other.refresh()
    assert sn(other, f"cn=user7,{PEOPLE}") == b"renamed"


def test_a_lost_listener_connection_serves_nothing_stale(backend: PostgresBackend,
                                                         other: PostgresBackend,
                                                         url: str) -> None:
    other.refresh()
    assert sn(other, ALICE) == b"alice"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)",
                      (other._listener._conn.info.backend_pid,))
    set_sn(backend, ALICE, "while deaf")
    other.refresh()
    assert sn(other, ALICE) == b"while deaf"


def test_reads_go_on_after_the_server_dropped_the_connection(backend: PostgresBackend,
                                                             url: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend._reader.info.backend_pid,))
    backend.refresh()
    assert backend.get(dn(f"cn=nobody,{PEOPLE}")) is None
    assert sn(backend, ALICE) == b"alice"


def test_writes_go_on_after_the_server_dropped_the_connection(backend: PostgresBackend,
                                                              url: str) -> None:
    _terminate(url, backend._writer)
    with backend.transaction() as txn:
        txn.add(person(f"cn=mallory,{PEOPLE}"))
    backend.refresh()
    assert sn(backend, f"cn=mallory,{PEOPLE}") == b"mallory"


def test_writes_go_on_once_the_database_takes_connections_again(
        backend: PostgresBackend, url: str, cluster: pg_cluster.Cluster) -> None:
    database = urlsplit(url).path[1:]
    with psycopg.connect(cluster.url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            _terminate(cluster.url, backend._writer)
            for _ in range(2):
                with pytest.raises(psycopg.OperationalError), backend.transaction() as txn:
                    txn.add(person(f"cn=nobody,{PEOPLE}"))
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    with backend.transaction() as txn:
        txn.add(person(f"cn=quentin,{PEOPLE}"))
    backend.refresh()
    assert sn(backend, f"cn=quentin,{PEOPLE}") == b"quentin"


def test_a_connection_dropped_inside_a_transaction_fails_it(backend: PostgresBackend,
                                                            url: str) -> None:
    with pytest.raises(psycopg.OperationalError), backend.transaction() as txn:
        txn.add(person(f"cn=nina,{PEOPLE}"))
        _terminate(url, backend._writer)
        txn.add(person(f"cn=oscar,{PEOPLE}"))
    with backend.transaction() as txn:
        txn.add(person(f"cn=peggy,{PEOPLE}"))
    backend.refresh()
    assert backend.get(dn(f"cn=nina,{PEOPLE}")) is None
    assert sn(backend, f"cn=peggy,{PEOPLE}") == b"peggy"


def _waiting_for_a_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                           ).fetchone()
    return row is not None and row[0] > 0


def test_two_front_ends_modifying_one_entry_lose_no_update(backend: PostgresBackend,
                                                           other: PostgresBackend,
                                                           url: str) -> None:
    def add_description(front_end: PostgresBackend, value: bytes) -> None:
        with front_end.transaction() as txn:
            entry = txn.get(dn(ALICE))
            assert entry is not None
            values = (*entry.get("description"), value)
            txn.replace(entry.with_attributes({**entry.attributes, "description": values}))

    with backend.transaction() as txn:
        entry = txn.get(dn(ALICE))
        assert entry is not None
        second = threading.Thread(target=add_description, args=(other, b"second"))
        second.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(url):
            assert time.monotonic() < deadline, "the second writer did not wait"
            time.sleep(0.01)
        txn.replace(entry.with_attributes({**entry.attributes, "description": (b"first",)}))
    second.join()
    backend.refresh()
    final = backend.get(dn(ALICE))
    assert final is not None and final.get("description") == (b"first", b"second")
