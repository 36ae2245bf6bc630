"""A persist pass (RFC 4533 §3.4) is not a snapshot: commits land between
its reads, and what it tells must still be what the content holds.

- An entry modified after the pass's scan of the content passed it, but
  before its scan of everything changed in scope, is still in the
  content: it is sent as a modify, never as a delete (which made a slapd
  consumer drop it for good under load, test099).
- An entry told as gone is sent again once a pass finds it in the
  content, even with the CSN it was told gone with.
- A rename in the delete log of an entry the pass found in the content in
  a cached reading from before it does not count as sent: the next pass
  sends the renamed entry (a slapd consumer kept the old DN, test099).

The DSA is a real one over an SQLite database, read-only (no writer):
the commits are the backend's own transactions, as another process's
would be, seen by `DSA.refresh`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from directory import dispatch
from directory.backend.opening import Storage, open_backend
from directory.config import DirectoryConfig
from directory.dsa import DSA
from directory.entry import Entry
from directory.operation import Operation, Reply, Session, Tick, Wait
from directory.ops import search as search_ops
from directory.protocol.dn import DN
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import Deref, Scope, SearchRequest
from directory.protocol.sync import SYNC_REQUEST, SYNC_STATE, Mode, State, SyncRequest, SyncState
from directory.replication import context, deletes, provider
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
ROOT = DN.parse(f"cn=admin,{SUFFIX}", SCHEMA)


# The time the test's CSNs count from.
CLOCK: dict[str, dt.datetime] = {}


@pytest.fixture(autouse=True)
def recent() -> None:
    """The test's CSNs are recent, as a commit's is: a pass's fence is a
    minute before it starts (set per test: the suite may reach one long
    after it imported this module)."""
    CLOCK["epoch"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)


def stamp(second: int) -> str:
    return (CLOCK["epoch"] + dt.timedelta(seconds=second)).strftime("%Y%m%d%H%M%S")


def csn(second: int) -> bytes:
    return f"{stamp(second)}.000000Z#000000#000#000000".encode()


def stamped(dn: str, attributes: dict[str, tuple[bytes, ...]], made: int,
            changed: int, entry_uuid: str) -> Entry:
    return Entry(DN.parse(dn, SCHEMA), {
        **attributes, "entryuuid": (entry_uuid.encode(),), "entrycsn": (csn(changed),),
        "createtimestamp": (f"{stamp(made)}Z".encode(),),
        "modifytimestamp": (f"{stamp(changed)}Z".encode(),)})


def person(uid: str, made: int, changed: int, entry_uuid: str, mail: str = "") -> Entry:
    return stamped(f"uid={uid},{PEOPLE}", {
        "objectclass": (b"top", b"person", b"organizationalPerson", b"inetOrgPerson"),
        "uid": (uid.encode(),), "cn": (uid.encode(),), "sn": (uid.encode(),),
        "mail": ((mail or f"{uid}@example.com").encode(),)}, made, changed, entry_uuid)


ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def dsa(tmp_path: Path) -> Iterator[DSA]:
    config = DirectoryConfig(SUFFIX, str(ROOT), "", tmp_path / "db")
    backend = open_backend(Storage(f"sqlite://{tmp_path / 'db'}", SCHEMA, config.indexes,
                                   context.TABLES + deletes.TABLES, 1000, 1024 * 1024))
    with backend.transaction() as txn:
        txn.add(stamped(SUFFIX, {"objectclass": (b"domain",), "dc": (b"example",)}, 1, 1,
                        str(uuid.uuid4())), root=True)
        txn.add(stamped(PEOPLE, {"objectclass": (b"organizationalUnit",), "ou": (b"people",)},
                        1, 1, str(uuid.uuid4())))
        txn.add(person("alice", 1, 1, ALICE))
        txn.add(person("bob", 1, 1, BOB))
    backend.refresh()
    found = DSA(config, SCHEMA, backend, None)
    yield found
    backend.close()


def commit(dsa: DSA, entry: Entry) -> None:
    with dsa.backend.transaction() as txn:
        txn.replace(entry)


def persist(dsa: DSA) -> Iterator[Reply | Tick]:
    request = SearchRequest(SUFFIX, Scope.SUB, Deref.NEVER, 0, 0, False,
                            parse_filter("(objectClass=*)"), ("*", "+"))
    op = Operation(dsa, Session(1, bound=ROOT, is_root=True), 1, request,
                   {SYNC_REQUEST: SyncRequest(Mode.REFRESH_AND_PERSIST)})
    outcome = dispatch.handle(op)
    assert isinstance(outcome, Iterator)
    return outcome


def until_waiting(search: Iterator[Reply | Tick]) -> list[tuple[State, str]]:
    """The Sync States sent until the search waits for commits: (state, entryUUID)."""
    told: list[tuple[State, str]] = []
    for item in search:
        if isinstance(item, Wait):
            return told
        if isinstance(item, Reply):
            for control in item.controls:
                if control.oid == SYNC_STATE:
                    state = SyncState.decode(control.value)
                    told.append((state.state, str(uuid.UUID(bytes=state.entry_uuid))))
    raise AssertionError("the persist search ended")


def test_an_entry_modified_between_the_scans_of_a_pass_is_a_modify(
        dsa: DSA, monkeypatch: pytest.MonkeyPatch) -> None:
    search = persist(dsa)
    assert {(State.ADD, ALICE), (State.ADD, BOB)} <= set(until_waiting(search))
    scans = search_ops.matches

    def modify_alice_after(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from scans(*args, **kwargs)
        monkeypatch.setattr(provider, "matches", scans)
        commit(dsa, person("alice", 1, 3, ALICE, "alice@example.org"))
        # As the writer's delivery or another operation does between two ticks.
        dsa.refresh()

    monkeypatch.setattr(provider, "matches", modify_alice_after)
    commit(dsa, person("bob", 1, 2, BOB, "bob@example.org"))
    told = until_waiting(search) + until_waiting(search)
    assert (State.DELETE, ALICE) not in told
    assert told.count((State.MODIFY, ALICE)) == 1
    assert told.count((State.MODIFY, BOB)) == 1


def test_a_rename_told_as_a_delete_is_sent_again_when_found_in_the_content(
        dsa: DSA, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename committed after the pass's refresh, before its read of the
    delete log: the log names the old DN, the cache still the old entry;
    the pass tells the old DN gone, the next one sends the renamed entry."""
    search = persist(dsa)
    until_waiting(search)
    since = deletes.since
    old = DN.parse(f"uid=alice,{PEOPLE}", SCHEMA)
    stale = dsa.backend.get(old)
    assert stale is not None

    def rename_alice_first(records: Any, cookie: Any) -> Any:
        monkeypatch.setattr(deletes, "since", since)
        renamed = person("alice", 1, 3, ALICE)
        renamed = Entry(DN.parse(f"uid=alicia,{PEOPLE}", SCHEMA),
                        {**renamed.attributes, "uid": (b"alicia",)})
        with dsa.backend.transaction() as txn:
            txn.rename(old, renamed)
            deletes.record(txn.records, csn(3).decode(), [stale])
        return since(records, cookie)

    monkeypatch.setattr(deletes, "since", rename_alice_first)
    commit(dsa, person("bob", 1, 2, BOB, "bob@example.org"))
    told = until_waiting(search) + until_waiting(search)
    assert told[told.index((State.DELETE, ALICE)):].count((State.MODIFY, ALICE)) == 1


def test_a_rename_of_an_entry_read_from_the_cache_is_sent_by_the_next_pass(
        dsa: DSA, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice modified, sent and cached; a commit during that pass keeps the
    cookie before her change. The next pass reads her rename in the delete
    log, but her cached modified reading in the content, sent already."""
    search = persist(dsa)
    until_waiting(search)
    old = DN.parse(f"uid=alice,{PEOPLE}", SCHEMA)

    def rename_alice() -> None:
        stale = dsa.backend.get(old)
        assert stale is not None
        renamed = person("alice", 1, 4, ALICE, "alice@example.org")
        renamed = Entry(DN.parse(f"uid=alicia,{PEOPLE}", SCHEMA),
                        {**renamed.attributes, "uid": (b"alicia",)})
        with dsa.backend.transaction() as txn:
            txn.rename(old, renamed)
            deletes.record(txn.records, csn(4).decode(), [stale])

    # Each after one pass's refresh, before its reads.
    commits = [lambda: commit(dsa, person("bob", 1, 3, BOB, "bob@example.org")),
               rename_alice]
    start = provider.Progress.start

    def commit_first(progress: provider.Progress, now: dt.datetime) -> Any:
        if commits:
            commits.pop(0)()
        return start(progress, now)

    monkeypatch.setattr(provider.Progress, "start", commit_first)
    commit(dsa, person("alice", 1, 2, ALICE, "alice@example.org"))
    told = until_waiting(search)
    assert commits == []
    assert (State.DELETE, ALICE) not in told
    assert told.count((State.MODIFY, ALICE)) == 2
