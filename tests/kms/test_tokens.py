"""One-time tokens (kms.tokens) on an SQLite connection holding only their table.

- A token is "ct-" + 32 base32 letters, stored only as its SHA-256.
- Redeeming marks it used; a second use, an expired, superseded, malformed,
  unknown or other-kind token is refused with a message saying why, and the
  refusal changes nothing.
- Issuing again for the same entry and kind supersedes the pending token;
  another kind or another entry does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator

import pytest

from kms import tokens
from kms.errors import KMSError

ALICE = "uid=alice,dc=example,dc=com"
BOB = "uid=bob,dc=example,dc=com"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    for statement in tokens.SCHEMA:
        connection.execute(statement)
    yield connection
    connection.close()


def rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM kms_tokens ORDER BY id").fetchall()


def test_issue_stores_only_the_hash(conn: sqlite3.Connection) -> None:
    token = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    assert token.startswith("ct-") and len(token) == 35
    assert token[3:].isalnum() and token == token.lower()
    (row,) = rows(conn)
    assert token not in repr(row)
    assert hashlib.sha256(token.encode()).hexdigest() in row


def test_tokens_are_distinct(conn: sqlite3.Connection) -> None:
    issued = {tokens.issue(conn, f"uid=u{i},dc=example,dc=com", "enroll", DAY, NOW)
              for i in range(50)}
    assert len(issued) == 50


def test_redeem_once(conn: sqlite3.Connection) -> None:
    token = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    assert [r.entry for r in tokens.pending(conn)] == [ALICE]
    record = tokens.redeem(conn, token, "enroll", NOW + dt.timedelta(hours=1))
    assert (record.entry, record.kind, record.escrow_id) == (ALICE, "enroll", None)
    assert record.used == NOW + dt.timedelta(hours=1)
    assert record.expires == NOW + DAY
    assert tokens.pending(conn) == []
    with pytest.raises(KMSError, match="already used on 2026-11-25 13:00"):
        tokens.redeem(conn, token, "enroll", NOW + dt.timedelta(hours=2))


def test_retyped_token_is_accepted(conn: sqlite3.Connection) -> None:
    token = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    assert tokens.redeem(conn, f"  {token.upper()}\n", "enroll", NOW).entry == ALICE


def test_expired(conn: sqlite3.Connection) -> None:
    token = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    before = rows(conn)
    with pytest.raises(KMSError, match="expired on 2026-11-26 12:00"):
        tokens.redeem(conn, token, "enroll", NOW + DAY)
    assert rows(conn) == before


@pytest.mark.parametrize("token, message", [
    ("", "not a certdir token"),
    ("hello", "not a certdir token"),
    ("ct-" + "a" * 31, "not a certdir token"),
    ("ct-" + "1" * 32, "not a certdir token"),  # 1 is not in the base32 alphabet
    ("xx-" + "a" * 32, "not a certdir token"),
    ("ct-" + "a" * 32, "unknown token"),
])
def test_malformed_and_unknown(conn: sqlite3.Connection, token: str, message: str) -> None:
    tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    before = rows(conn)
    with pytest.raises(KMSError, match=message):
        tokens.redeem(conn, token, "enroll", NOW)
    assert rows(conn) == before


def test_wrong_kind(conn: sqlite3.Connection) -> None:
    enroll = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    recovery = tokens.issue(conn, ALICE, "recovery", DAY, NOW, escrow_id=7)
    before = rows(conn)
    with pytest.raises(KMSError, match="an enrollment token, not a key recovery token"):
        tokens.redeem(conn, enroll, "recovery", NOW)
    with pytest.raises(KMSError, match="a key recovery token, not an enrollment token"):
        tokens.redeem(conn, recovery, "enroll", NOW)
    assert rows(conn) == before
    assert tokens.redeem(conn, recovery, "recovery", NOW).escrow_id == 7


def test_superseded(conn: sqlite3.Connection) -> None:
    old = tokens.issue(conn, ALICE, "enroll", DAY, NOW)
    other_kind = tokens.issue(conn, ALICE, "recovery", DAY, NOW, escrow_id=1)
    other_entry = tokens.issue(conn, BOB, "enroll", DAY, NOW)
    # The same entry written another way is the same entry.
    new = tokens.issue(conn, "UID=Alice, DC=example,DC=com", "enroll", DAY,
                       NOW + dt.timedelta(minutes=5))
    with pytest.raises(KMSError, match="superseded by a newer one issued on 2026-11-25 12:05"):
        tokens.redeem(conn, old, "enroll", NOW + dt.timedelta(minutes=6))
    assert len(tokens.pending(conn)) == 3
    for token, kind in ((new, "enroll"), (other_kind, "recovery"), (other_entry, "enroll")):
        tokens.redeem(conn, token, kind, NOW + dt.timedelta(minutes=6))


@pytest.mark.parametrize("entry, kind, lifetime, escrow_id, message", [
    (ALICE, "renew", DAY, None, "unknown token kind 'renew'"),
    (ALICE, "enroll", dt.timedelta(0), None, "lifetime must be positive"),
    (ALICE, "recovery", DAY, None, "names an escrowed key"),
    (ALICE, "enroll", DAY, 3, "names an escrowed key"),
    ("not a dn", "enroll", DAY, None, "not a DN"),
])
def test_issue_refusals(conn: sqlite3.Connection, entry: str, kind: str,
                        lifetime: dt.timedelta, escrow_id: int | None, message: str) -> None:
    with pytest.raises(KMSError, match=message):
        tokens.issue(conn, entry, kind, lifetime, NOW, escrow_id)
    assert rows(conn) == []
