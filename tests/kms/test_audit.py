"""The hash-chained KMS audit log (kms.audit) on a real SQLite file.

- A log written by `record` verifies, across connections and transactions.
- Changing any column of any record, deleting the first, a middle or the
  last record, reordering records, or editing the head each give at least
  one line from `verify` naming the record.
- A record in a rolled-back transaction leaves neither record nor head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms import audit
from tests.kms import database, transaction

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ADMIN = "cn=admin,dc=example,dc=com"
ALICE = "uid=alice,dc=example,dc=com"
ACTIONS: tuple[tuple[str, str, audit.Details], ...] = (
    ("kms.init", "", {}),
    ("token.issued", ALICE, {"kind": "enroll", "expires": "2026-12-02T12:00:00+00:00"}),
    ("token.redeemed", ALICE, {"token": 1}),
    ("enrolled", ALICE, {"signing": "1f", "encryption": "2a", "escrow": 1}),
    ("revoked", ALICE, {"serial": "1f", "reason": None, "note": "Zoë left; ünïcode"}),
)
SIZE = len(ACTIONS)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = database(tmp_path / "certdir.db")
    for minutes, (action, subject, details) in enumerate(ACTIONS):
        with transaction(connection):
            audit.record(connection, ADMIN, action, subject, details,
                         NOW + dt.timedelta(minutes=minutes))
    yield connection
    connection.close()


def rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM kms_audit ORDER BY seq").fetchall()


def test_intact_log_verifies(conn: sqlite3.Connection, tmp_path: Path) -> None:
    assert audit.verify(conn) == []
    assert audit.verify(sqlite3.connect(tmp_path / "certdir.db")) == []
    assert [row[0] for row in rows(conn)] == list(range(1, SIZE + 1))


def test_empty_log_verifies(tmp_path: Path) -> None:
    assert audit.verify(database(tmp_path / "empty.db")) == []


def test_hash_is_prev_plus_canonical_json(conn: sqlite3.Connection) -> None:
    prev = audit.GENESIS
    for seq, at, actor, action, subject, details, stored_prev, stored_hash in rows(conn):
        content = json.dumps([seq, at, actor, action, subject, json.loads(str(details))],
                             sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert stored_prev == prev
        assert stored_hash == hashlib.sha256((prev + content).encode()).hexdigest()
        prev = str(stored_hash)


def test_rolled_back_record_leaves_nothing(conn: sqlite3.Connection) -> None:
    before = rows(conn)
    with pytest.raises(RuntimeError), transaction(conn):
        audit.record(conn, ADMIN, "ca.issue", ALICE, {"serial": "3b"}, NOW)
        raise RuntimeError("the action failed")
    assert rows(conn) == before
    assert audit.verify(conn) == []
    with transaction(conn):
        audit.record(conn, ADMIN, "ca.issue", ALICE, {"serial": "3b"}, NOW)
    assert audit.verify(conn) == []


TAMPERED_VALUES = {
    "at": "2020-01-01T00:00:00.000000+00:00",
    "actor": "cn=mallory,dc=example,dc=com",
    "action": "recovery.performed",
    "subject": "uid=bob,dc=example,dc=com",
    "details": '{"serial":"ff"}',
    "prev": "1" * 64,
    "hash": "2" * 64,
}


@pytest.mark.parametrize("seq", range(1, SIZE + 1))
@pytest.mark.parametrize("column", [*TAMPERED_VALUES, "seq"])
def test_altered_column(conn: sqlite3.Connection, column: str, seq: int) -> None:
    value = 100 + seq if column == "seq" else TAMPERED_VALUES[column]
    conn.execute(f"UPDATE kms_audit SET {column} = ? WHERE seq = ?", (value, seq))
    problems = audit.verify(conn)
    assert problems
    assert any(f"record {seq}" in line or f"records {seq}-" in line for line in problems)


def test_details_not_json(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE kms_audit SET details = 'not json' WHERE seq = 2")
    assert audit.verify(conn) == ["record 2 was changed: its details are not JSON"]


@pytest.mark.parametrize("seq, expected", [
    (1, ["record 1 is missing"]),
    (3, ["record 3 is missing"]),
    (SIZE, [f"record {SIZE} is missing (deleted at the end of the log)"]),
])
def test_deleted_record(conn: sqlite3.Connection, seq: int, expected: list[str]) -> None:
    conn.execute("DELETE FROM kms_audit WHERE seq = ?", (seq,))
    assert audit.verify(conn) == expected


def test_deleted_records_at_the_end_then_new_record(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM kms_audit WHERE seq >= 4")
    with transaction(conn):
        audit.record(conn, ADMIN, "ca.issue", ALICE, {}, NOW)
    assert audit.verify(conn) == ["records 4-5 are missing"]


def test_everything_deleted(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM kms_audit")
    assert audit.verify(conn) == [f"records 1-{SIZE} are missing (deleted at the end of the log)"]


def test_reordered_records(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE kms_audit SET seq = -seq WHERE seq IN (2, 3)")
    conn.execute("UPDATE kms_audit SET seq = 3 WHERE seq = -2")
    conn.execute("UPDATE kms_audit SET seq = 2 WHERE seq = -3")
    problems = audit.verify(conn)
    assert "record 2 does not follow record 1: the chain is broken" in problems
    assert "record 2 was changed: its content does not match its hash" in problems
    assert "record 3 was changed: its content does not match its hash" in problems


def test_reordered_contents(conn: sqlite3.Connection) -> None:
    columns = "at, actor, action, subject, details"
    second = conn.execute(f"SELECT {columns} FROM kms_audit WHERE seq = 2").fetchone()
    third = conn.execute(f"SELECT {columns} FROM kms_audit WHERE seq = 3").fetchone()
    update = "UPDATE kms_audit SET at = ?, actor = ?, action = ?, subject = ?, details = ?"
    conn.execute(update + " WHERE seq = 2", third)
    conn.execute(update + " WHERE seq = 3", second)
    assert audit.verify(conn) == [
        "record 2 was changed: its content does not match its hash",
        "record 3 was changed: its content does not match its hash",
    ]


def test_head_altered(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE kms_audit_head SET hash = ?", ("3" * 64,))
    assert audit.verify(conn) == [f"the audit head does not match record {SIZE}"]


def test_head_missing(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM kms_audit_head")
    assert audit.verify(conn) == ["the audit head is missing"]


def test_record_added_behind_the_head(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE kms_audit_head SET seq = 3, hash = (SELECT hash FROM kms_audit"
                 " WHERE seq = 3)")
    assert audit.verify(conn) == [f"records 4-{SIZE} were added behind the audit head"]
