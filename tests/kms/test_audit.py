"""The hash-chained KMS audit log (kms.audit) on a real SQLite file.

- A log written by `record` verifies, across transactions and when reopened.
- Changing any column of any record, deleting the first, a middle or the
  last record, reordering records, or editing the head each give at least
  one line from `verify` naming the record.
- A record in a rolled-back transaction leaves neither record nor head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms import audit
from tests.kms import Database

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
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "certdir.db")
    for minutes, (action, subject, details) in enumerate(ACTIONS):
        with database.transaction() as records:
            audit.record(records, ADMIN, action, subject, details,
                         NOW + dt.timedelta(minutes=minutes))
    yield database
    database.close()


def rows(db: Database) -> list[tuple[object, ...]]:
    return db.edit.execute("SELECT * FROM kms_audit ORDER BY seq").fetchall()


def test_intact_log_verifies(db: Database, tmp_path: Path) -> None:
    assert db.read(audit.verify) == []
    reopened = Database(tmp_path / "certdir.db")
    assert reopened.read(audit.verify) == []
    reopened.close()
    assert [row[0] for row in rows(db)] == list(range(1, SIZE + 1))


def test_empty_log_verifies(tmp_path: Path) -> None:
    empty = Database(tmp_path / "empty.db")
    assert empty.read(audit.verify) == []
    empty.close()


def test_hash_is_prev_plus_canonical_json(db: Database) -> None:
    prev = audit.GENESIS
    for seq, at, actor, action, subject, details, stored_prev, stored_hash in rows(db):
        content = json.dumps([seq, at, actor, action, subject, json.loads(str(details))],
                             sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert stored_prev == prev
        assert stored_hash == hashlib.sha256((prev + content).encode()).hexdigest()
        prev = str(stored_hash)


def test_rolled_back_record_leaves_nothing(db: Database) -> None:
    before = rows(db)
    with pytest.raises(RuntimeError), db.transaction() as records:
        audit.record(records, ADMIN, "ca.issue", ALICE, {"serial": "3b"}, NOW)
        raise RuntimeError("the action failed")
    assert rows(db) == before
    assert db.read(audit.verify) == []
    with db.transaction() as records:
        audit.record(records, ADMIN, "ca.issue", ALICE, {"serial": "3b"}, NOW)
    assert db.read(audit.verify) == []


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
def test_altered_column(db: Database, column: str, seq: int) -> None:
    value = 100 + seq if column == "seq" else TAMPERED_VALUES[column]
    db.edit.execute(f"UPDATE kms_audit SET {column} = ? WHERE seq = ?", (value, seq))
    problems = db.read(audit.verify)
    assert problems
    assert any(f"record {seq}" in line or f"records {seq}-" in line for line in problems)


def test_details_not_json(db: Database) -> None:
    db.edit.execute("UPDATE kms_audit SET details = 'not json' WHERE seq = 2")
    assert db.read(audit.verify) == ["record 2 was changed: its details are not JSON"]


@pytest.mark.parametrize("seq, expected", [
    (1, ["record 1 is missing"]),
    (3, ["record 3 is missing"]),
    (SIZE, [f"record {SIZE} is missing (deleted at the end of the log)"]),
])
def test_deleted_record(db: Database, seq: int, expected: list[str]) -> None:
    db.edit.execute("DELETE FROM kms_audit WHERE seq = ?", (seq,))
    assert db.read(audit.verify) == expected


def test_deleted_records_at_the_end_then_new_record(db: Database) -> None:
    db.edit.execute("DELETE FROM kms_audit WHERE seq >= 4")
    with db.transaction() as records:
        audit.record(records, ADMIN, "ca.issue", ALICE, {}, NOW)
    assert db.read(audit.verify) == ["records 4-5 are missing"]


def test_everything_deleted(db: Database) -> None:
    db.edit.execute("DELETE FROM kms_audit")
    assert db.read(audit.verify) == [
        f"records 1-{SIZE} are missing (deleted at the end of the log)"]


def test_reordered_records(db: Database) -> None:
    db.edit.execute("UPDATE kms_audit SET seq = -seq WHERE seq IN (2, 3)")
    db.edit.execute("UPDATE kms_audit SET seq = 3 WHERE seq = -2")
    db.edit.execute("UPDATE kms_audit SET seq = 2 WHERE seq = -3")
    problems = db.read(audit.verify)
    assert "record 2 does not follow record 1: the chain is broken" in problems
    assert "record 2 was changed: its content does not match its hash" in problems
    assert "record 3 was changed: its content does not match its hash" in problems


def test_reordered_contents(db: Database) -> None:
    columns = "at, actor, action, subject, details"
    second = db.edit.execute(f"SELECT {columns} FROM kms_audit WHERE seq = 2").fetchone()
    third = db.edit.execute(f"SELECT {columns} FROM kms_audit WHERE seq = 3").fetchone()
    update = "UPDATE kms_audit SET at = ?, actor = ?, action = ?, subject = ?, details = ?"
    db.edit.execute(update + " WHERE seq = 2", third)
    db.edit.execute(update + " WHERE seq = 3", second)
    assert db.read(audit.verify) == [
        "record 2 was changed: its content does not match its hash",
        "record 3 was changed: its content does not match its hash",
    ]


def test_head_altered(db: Database) -> None:
    db.edit.execute("UPDATE kms_audit_head SET hash = ?", ("3" * 64,))
    assert db.read(audit.verify) == [f"the audit head does not match record {SIZE}"]


def test_head_missing(db: Database) -> None:
    db.edit.execute("DELETE FROM kms_audit_head")
    assert db.read(audit.verify) == ["the audit head is missing"]


def test_record_added_behind_the_head(db: Database) -> None:
    db.edit.execute("UPDATE kms_audit_head SET seq = 3, hash = (SELECT hash FROM kms_audit"
                 " WHERE seq = 3)")
    assert db.read(audit.verify) == [f"records 4-{SIZE} were added behind the audit head"]
