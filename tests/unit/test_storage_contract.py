"""The storage contract (directory.backend) as the CA and the KMS rely on it.

- Opening storage creates the application's tables (`Tables`, the CA's and
  the KMS's as `certdir` declares them); opening it again with the same
  tables runs none of their statements, and opening it with changed ones
  runs them all again.
- `Records` speaks the portable dialect: `INSERT ... RETURNING id` gives the
  number the database chose, `run` the number of rows changed, `ON CONFLICT
  ... DO UPDATE` upserts.
- `Transaction.records` commits with the transaction or not at all.
- `reading()` is one snapshot: a commit made while it is open is not seen
  in it, and is seen by the next one.
- The SQLite backend has every member of `Backend`, `Transaction` and
  `Records` (mypy checks their types where opening returns it as `Backend`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from ca.store import TABLES as CA_TABLES
from directory.backend import Backend, Records, Tables, Transaction
from directory.backend.opening import Storage, open_backend
from directory.backend.sqlite import SQLiteBackend
from directory.schema import Schema
from kms.store import TABLES as KMS_TABLES

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
TABLES = CA_TABLES + KMS_TABLES
APPLICATION_TABLES = ("ca_certificates", "ca_requests", "ca_releases", "ca_crls",
                      "ca_issuer_crls", "kms_vault", "kms_escrow", "kms_audit",
                      "kms_audit_head", "kms_audit_anchor", "kms_tokens", "kms_recoveries",
                      "kms_recovery_approvals")


def opened(path: Path, tables: Tables = TABLES) -> Backend:
    return open_backend(Storage("sqlite://" + quote(str(path)), SCHEMA, (), tables, 1000,
                                1 << 20))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "certdir.db"


@pytest.fixture
def backend(path: Path) -> Iterator[Backend]:
    opened_backend = opened(path)
    yield opened_backend
    opened_backend.close()


def tables_in(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}


def drop(path: Path, table: str) -> None:
    """Remove a table behind the backend's back (its record of the tables stays)."""
    conn = sqlite3.connect(path)
    conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.close()


def test_opening_creates_the_tables(backend: Backend, path: Path) -> None:
    assert set(APPLICATION_TABLES) <= tables_in(path)


def test_opening_again_runs_no_table_statement(backend: Backend, path: Path) -> None:
    drop(path, "kms_tokens")
    opened(path).close()
    assert "kms_tokens" not in tables_in(path)


def test_changed_tables_are_created_again(backend: Backend, path: Path) -> None:
    drop(path, "kms_tokens")
    extra = "CREATE TABLE IF NOT EXISTS extra (id INTEGER PRIMARY KEY, note TEXT)"
    opened(path, (*TABLES, extra)).close()
    assert {"kms_tokens", "extra"} <= tables_in(path)


def test_insert_returning_numbers_the_rows(backend: Backend) -> None:
    with backend.transaction() as txn:
        first = txn.records.row("INSERT INTO kms_escrow (owner, owner_key, serial, created,"
                                " sealed) VALUES (?, ?, ?, ?, ?) RETURNING id",
                                ("o", "o", "1", "t", b"s"))
        second = txn.records.row("INSERT INTO kms_escrow (owner, owner_key, serial, created,"
                                 " sealed) VALUES (?, ?, ?, ?, ?) RETURNING id",
                                 ("o", "o", "2", "t", b"s"))
    assert first is not None and second is not None
    assert int(second[0]) > int(first[0]) > 0


def test_run_counts_changed_rows(backend: Backend) -> None:
    with backend.transaction() as txn:
        for serial in ("1", "2", "3"):
            txn.records.run("INSERT INTO ca_releases (serial, released_at) VALUES (?, ?)",
                            (serial, "2026-01-01T00:00:00Z"))
        changed = txn.records.run("UPDATE ca_releases SET released_at = ? WHERE serial <> ?",
                                  ("2026-02-01T00:00:00Z", "2"))
    assert changed == 2


def test_on_conflict_upserts(backend: Backend) -> None:
    upsert = ("INSERT INTO kms_audit_head (id, seq, hash) VALUES (1, ?, ?)"
              " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
    with backend.transaction() as txn:
        txn.records.run(upsert, (1, "a"))
        txn.records.run(upsert, (2, "b"))
    with backend.reading() as records:
        assert records.rows("SELECT id, seq, hash FROM kms_audit_head") == [(1, 2, "b")]


def test_records_roll_back_with_the_transaction(backend: Backend) -> None:
    with pytest.raises(RuntimeError), backend.transaction() as txn:
        txn.records.run("INSERT INTO ca_releases (serial, released_at) VALUES (?, ?)",
                        ("1f", "2026-01-01T00:00:00Z"))
        raise RuntimeError("the caller's work failed")
    with backend.reading() as records:
        assert records.row("SELECT count(*) FROM ca_releases") == (0,)


def _releases(records: Records) -> int:
    row = records.row("SELECT count(*) FROM ca_releases")
    assert row is not None
    return int(row[0])


def test_reading_is_one_snapshot(backend: Backend) -> None:
    with backend.reading() as records:
        before = _releases(records)
        with backend.transaction() as txn:
            txn.records.run("INSERT INTO ca_releases (serial, released_at) VALUES (?, ?)",
                            ("1f", "2026-01-01T00:00:00Z"))
        during = _releases(records)
    with backend.reading() as records:
        after = _releases(records)
    assert (before, during, after) == (0, 0, 1)


def _members(protocol: type) -> set[str]:
    return {name for name in (*vars(protocol), *protocol.__annotations__)
            if not name.startswith("_")}


def test_sqlite_backend_has_every_member_of_the_protocols(backend: Backend) -> None:
    assert isinstance(backend, SQLiteBackend)
    with backend.transaction() as txn:
        missing = {
            "Backend": {m for m in _members(Backend) if not hasattr(backend, m)},
            "Transaction": {m for m in _members(Transaction) if not hasattr(txn, m)},
            "Records": {m for m in _members(Records) if not hasattr(txn.records, m)},
        }
    assert missing == {"Backend": set(), "Transaction": set(), "Records": set()}
