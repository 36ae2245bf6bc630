"""Front ends on one PostgreSQL database stay consistent (issue 11 part 2),
with real backends on a real database of a throwaway cluster.

- Every opening of the database gets its own node number (the CSN server
  id); a closed one's number is free again; with all 4096 held, the next
  is refused; SQLite keeps the local number.
- Two front ends recording a CRL at once: the one that loses the race
  meets a `Conflict` on the number, reads and signs afresh, and takes the
  next numbers; none is given twice or skipped.
- A KMS token redeemed in two front ends' transactions at once (READ
  COMMITTED): exactly one succeeds, the other is told it was already used.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ca import crl
from ca.authority import unlock
from ca.store import Store
from certdir.config import load
from certdir.directory_open import offline_directory
from directory.backend import MAX_NODE, Backend, Conflict, Tables
from directory.backend.opening import Storage, open_backend, sqlite_url
from directory.backend.pg_nodes import NAMESPACE, NodesExhausted
from directory.csn import CSNGenerator
from directory.schema import Schema
from kms import tokens
from kms.errors import KMSError
from kms.store import TABLES as KMS_TABLES
from tests import pg_cluster

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
ALICE = "uid=alice,dc=example,dc=com"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def url(cluster: pg_cluster.Cluster) -> str:
    return cluster.database("nodes")


def open_at(url: str, tables: Tables = ()) -> Backend:
    return open_backend(Storage(url, SCHEMA, (), tables, 1000, 1 << 20))


def wait_until_blocked(url: str) -> None:
    """Return once some session of the database waits for a lock."""
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                               " current_database() AND wait_event_type = 'Lock'").fetchone()
            if row is not None and row[0]:
                return
            assert time.monotonic() < deadline, "the second transaction never waited"
            time.sleep(0.02)


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """`work` started on a thread; the list gets what it returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as e:  # the test asserts on it
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# --- node numbers ---------------------------------------------------------------------

def test_each_opening_of_one_database_has_its_own_node(url: str) -> None:
    backends = [open_at(url) for _ in range(3)]
    try:
        numbers = [b.node(0) for b in backends]
        assert sorted(numbers) == [0, 1, 2]
        assert [b.node(7) for b in backends] == numbers
    finally:
        for backend in backends:
            backend.close()


def test_a_closed_openings_number_is_free_again(url: str) -> None:
    first, second = open_at(url), open_at(url)
    try:
        assert (first.node(0), second.node(0)) == (0, 1)
        first.close()
        third = open_at(url)
        try:
            assert third.node(0) == 0
        finally:
            third.close()
    finally:
        second.close()


def test_numbers_start_at_the_local_number(url: str) -> None:
    first, second = open_at(url), open_at(url)
    try:
        assert (first.node(100), second.node(100)) == (100, 101)
    finally:
        first.close()
        second.close()


def test_other_databases_number_their_nodes_on_their_own(
        cluster: pg_cluster.Cluster, url: str) -> None:
    here, there = open_at(url), open_at(cluster.database("other"))
    try:
        assert (here.node(0), there.node(0)) == (0, 0)
    finally:
        here.close()
        there.close()


def test_past_the_last_node_number_opening_is_refused(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as holder:
        for number in range(MAX_NODE + 1):
            holder.execute("SELECT pg_advisory_lock(%s, %s)", (NAMESPACE, number))
        backend = open_at(url)
        try:
            with pytest.raises(NodesExhausted, match="all 4096 node numbers"):
                backend.node(0)
        finally:
            backend.close()


def test_sqlite_keeps_the_local_number(tmp_path: Path) -> None:
    backend = open_at(sqlite_url(tmp_path / "certdir.db"))
    try:
        assert backend.node(5) == 5
    finally:
        backend.close()


def test_a_server_id_past_three_hex_digits_is_refused() -> None:
    assert CSNGenerator(MAX_NODE).next(NOW).split("#")[2] == "fff"
    with pytest.raises(ValueError, match=r"0\.\.4095, not 4096"):
        CSNGenerator(MAX_NODE + 1)


# --- uniqueness conflicts -------------------------------------------------------------

def test_a_key_taken_by_a_concurrent_transaction_is_a_conflict(url: str) -> None:
    first, second = open_at(url, KMS_TABLES), open_at(url, KMS_TABLES)
    insert = ("INSERT INTO kms_tokens (digest, entry, entry_key, kind, created, expires)"
              " VALUES ('d', 'e', 'e', 'enroll', 'now', 'later')")
    try:
        with first.transaction() as txn:
            txn.records.run(insert)

            def racing() -> int:
                with second.transaction() as other:
                    return other.records.run(insert)

            thread, outcome = in_thread(racing)
            wait_until_blocked(url)
        thread.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    finally:
        first.close()
        second.close()


# --- CRL numbers ----------------------------------------------------------------------

def crl_numbers(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT number FROM ca_crls ORDER BY number")]


def test_crl_number_taken_meanwhile_is_read_and_signed_afresh(
        url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "ca"
    subprocess.run([sys.executable, "-m", "certdir", "init", "--data-dir", str(data_dir),
                    "--suffix", "dc=example,dc=com", "--storage-url", url],
                   check=True, capture_output=True, timeout=120)
    config = load(data_dir)
    assert config.ca is not None
    authority = unlock(config.ca, data_dir, config.directory.suffix)
    with offline_directory(config) as here, offline_directory(config) as there:
        with here.backend.reading() as records:
            taken = Store(records).next_crl_number()
        with here.backend.transaction() as txn:
            store = Store(txn.records)
            store.record_crl(taken, None, NOW, NOW + HOUR, b"full")
            store.record_crl(taken + 1, taken, NOW, NOW + HOUR, b"delta")
            thread, outcome = in_thread(lambda: crl.generate(authority, there, NOW))
            wait_until_blocked(url)
        thread.join(timeout=60)
    (made,) = outcome
    assert isinstance(made, crl.CRLs)
    assert (made.number, made.base) == (taken + 2, taken)
    assert crl_numbers(url) == list(range(1, taken + 4))


# --- single-use tokens ----------------------------------------------------------------

def test_a_token_redeemed_on_two_front_ends_at_once_works_once(url: str) -> None:
    first, second = open_at(url, KMS_TABLES), open_at(url, KMS_TABLES)
    try:
        with first.transaction() as txn:
            token = tokens.issue(txn.records, ALICE, "enroll", HOUR, NOW)
        with first.transaction() as txn:
            won = tokens.redeem(txn.records, token, "enroll", NOW)

            def racing() -> tokens.TokenRecord:
                with second.transaction() as other:
                    return tokens.redeem(other.records, token, "enroll", NOW)

            thread, outcome = in_thread(racing)
            wait_until_blocked(url)
        thread.join(timeout=30)
        assert won.entry == ALICE
        (lost,) = outcome
        assert isinstance(lost, KMSError) and str(lost) == "this token was already used"
        with second.reading() as records:
            assert records.rows("SELECT used FROM kms_tokens") == [(NOW.isoformat(),)]
    finally:
        first.close()
        second.close()
