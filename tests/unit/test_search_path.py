"""The search path's shortcuts keep what they shortcut.

- Entries an index lookup selects are read a chunk of ids at a time: a
  search still returns each of them once, in id order, across chunk
  boundaries, whether some are cached or not (even when reading the
  others evicts them), and leaves out ids whose entry is gone.
- One-level and subtree scans read a chunk of rows at a time, after the
  last key seen: across chunk boundaries each entry in scope comes once
  (subtree in path order with its base first, one level in id order),
  and an entry deleted before the scan reaches it is left out.
- A cached entry's footprint counts at least its values' own bytes.
- The view keeps answers per entry DN: asked about two entries in turn,
  it answers each with its own rights, and a second Entry object with the
  same DN gets the answers the first got (as when answers were kept by DN
  and attribute); `lacking` names exactly the attributes without the
  wanted right, and the root DN lacks none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from directory.acl.identity import Identity
from directory.acl.policy import Reader
from directory.acl.rights import LEVELS, Rights
from directory.acl.view import ENTRY, NOTHING, View
from directory.backend import Prefix
from directory.backend.candidates import SCAN_CHUNK
from directory.backend.index_keys import EQ, IndexSpec
from directory.backend.sqlite import CHUNK, SQLiteBackend, footprint
from directory.entry import Entry, serialize
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
PEOPLE = 2 * CHUNK + 7
BASE = DN.parse("o=book", SCHEMA)


def person(i: int) -> Entry:
    return Entry(DN.parse(f"cn=person {i:04d},o=book", SCHEMA), {
        "objectclass": (b"person",), "cn": (f"person {i:04d}".encode(),),
        "sn": (b"x" * i,)})


@pytest.fixture(params=[200_000, 5], ids=["roomy cache", "cache of 5 entries"])
def backend(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SQLiteBackend]:
    opened = SQLiteBackend(tmp_path / "book.db", SCHEMA, [IndexSpec("cn", frozenset({EQ}))],
                           cache_entries=request.param)
    with opened.transaction() as txn:
        txn.add(Entry(BASE, {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
        for i in range(PEOPLE):
            txn.add(person(i))
    opened.refresh()
    yield opened
    opened.close()


def names(entries: Iterator[Entry]) -> list[str]:
    return [e.first("cn").decode() for e in entries]  # type: ignore[union-attr]


EVERYONE = Prefix("cn", b"person")


def test_every_selected_entry_once_in_id_order(backend: SQLiteBackend) -> None:
    found = list(backend.search(BASE, Scope.SUB, EVERYONE))
    assert names(iter(found)) == [f"person {i:04d}" for i in range(PEOPLE)]
    assert [e.id for e in found] == sorted(e.id for e in found)


def test_cached_and_uncached_entries_mix(backend: SQLiteBackend) -> None:
    # The end of the first chunk cached: reading its start may evict them.
    for i in (*range(0, PEOPLE, 3), *range(CHUNK - 5, CHUNK)):
        assert backend.get(person(i).dn) is not None
    assert names(backend.search(BASE, Scope.SUB, EVERYONE)) == [
        f"person {i:04d}" for i in range(PEOPLE)]


def test_a_deleted_entry_is_left_out(backend: SQLiteBackend) -> None:
    gone = {3, CHUNK - 1, CHUNK, PEOPLE - 1}
    with backend.transaction() as txn:
        for i in gone:
            txn.delete(person(i).dn)
    backend.refresh()
    assert names(backend.search(BASE, Scope.SUB, EVERYONE)) == [
        f"person {i:04d}" for i in range(PEOPLE) if i not in gone]


CROWD = 2 * SCAN_CHUNK + 5


@pytest.fixture
def crowded(backend: SQLiteBackend) -> SQLiteBackend:
    with backend.transaction() as txn:
        for i in range(PEOPLE, CROWD):
            txn.add(person(i))
    backend.refresh()
    return backend


def test_a_subtree_scan_crosses_its_chunks(crowded: SQLiteBackend) -> None:
    found = list(crowded.search(BASE, Scope.SUB, None))
    assert found[0].dn == BASE
    assert names(iter(found[1:])) == [f"person {i:04d}" for i in range(CROWD)]


def test_children_leave_out_the_base(crowded: SQLiteBackend) -> None:
    assert names(crowded.search(BASE, Scope.CHILDREN, None)) == [
        f"person {i:04d}" for i in range(CROWD)]


def test_a_one_level_scan_crosses_its_chunks(crowded: SQLiteBackend) -> None:
    found = list(crowded.search(BASE, Scope.ONE, None))
    assert names(iter(found)) == [f"person {i:04d}" for i in range(CROWD)]
    assert [e.id for e in found] == sorted(e.id for e in found)


def test_a_scan_leaves_out_what_was_deleted_before_it_got_there(
        crowded: SQLiteBackend) -> None:
    scan = crowded.search(BASE, Scope.ONE, None)
    first = next(scan)
    with crowded.transaction() as txn:
        txn.delete(person(CROWD - 1).dn)
    crowded.refresh()
    assert names(scan) == [f"person {i:04d}" for i in range(1, CROWD - 1)]
    assert first.first("cn") == b"person 0000"


def test_footprint_counts_the_values() -> None:
    entry = person(500)
    assert footprint(entry, serialize(entry)) > 3 * 500


class Table:
    """Read on cn of `readable` DNs only, search on everything else."""

    def __init__(self, readable: set[str]) -> None:
        self.readable = readable
        self.asked: list[tuple[str, str]] = []

    def rights(self, who: Identity, entry: Entry, attribute: str, get: Reader) -> Rights:
        self.asked.append((entry.dn.normalized, attribute))
        if attribute == "cn" and entry.dn.normalized in self.readable:
            return LEVELS["read"]
        return LEVELS["search"]

    def uniform(self, who: Identity, attribute: str, get: Reader) -> Rights | None:
        return None

    def may_proxy(self, who: Identity, target: DN, get: Reader) -> bool:
        return False


USER = Identity(DN.parse("cn=reader,o=book", SCHEMA), mechanism="simple")
ROOT = Identity(DN.parse("cn=admin,o=book", SCHEMA), is_root=True)


def test_answers_follow_the_entry() -> None:
    one, two = person(1), person(2)
    policy = Table({one.dn.normalized})
    view = View(policy, USER, lambda dn: None)
    assert view.lacking(one, Rights.READ, ("cn", "sn")) == frozenset({"sn"})
    assert view.lacking(two, Rights.READ, ("cn", "sn")) == frozenset({"cn", "sn"})
    assert view.lacking(one, Rights.READ, ("cn",)) is NOTHING
    assert view.rights(two, "cn") == LEVELS["search"]
    assert view.allows(one, Rights.READ, "cn")
    assert not view.allows(two, Rights.READ, "cn")
    assert not view.allows(one, Rights.SEARCH | Rights.READ, ENTRY)
    assert len(policy.asked) == len(set(policy.asked)) == 5


def test_answers_are_kept_by_dn() -> None:
    first = person(1)
    again = first.with_attributes({"cn": (b"person 0001",)})
    policy = Table({first.dn.normalized})
    view = View(policy, USER, lambda dn: None)
    assert view.allows(first, Rights.READ, "cn")
    assert view.allows(person(2), Rights.SEARCH, "cn")
    assert view.allows(again, Rights.READ, "cn")
    assert policy.asked == [(first.dn.normalized, "cn"), (person(2).dn.normalized, "cn")]


def test_the_root_lacks_nothing() -> None:
    policy = Table(set())
    view = View(policy, ROOT, lambda dn: None)
    assert view.lacking(person(1), Rights.READ, ("cn", "sn")) is NOTHING
    assert view.allows(person(1), Rights.DELETE)
    assert policy.asked == []
