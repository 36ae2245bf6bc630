"""One-time tokens (kms.tokens), in one transaction on a real SQLite file.

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
from collections.abc import Iterator
from pathlib import Path

import pytest

from directory.backend import Records
from kms import tokens
from kms.errors import KMSError
from tests.kms import Database

ALICE = "uid=alice,dc=example,dc=com"
BOB = "uid=bob,dc=example,dc=com"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    database = Database(tmp_path / "certdir.db")
    with database.transaction() as open_transaction:
        yield open_transaction
    database.close()


def rows(records: Records) -> list[tuple[object, ...]]:
    return records.rows("SELECT * FROM kms_tokens ORDER BY id")


def test_issue_stores_only_the_hash(records: Records) -> None:
    token = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    assert token.startswith("ct-") and len(token) == 35
    assert token[3:].isalnum() and token == token.lower()
    (row,) = rows(records)
    assert token not in repr(row)
    assert hashlib.sha256(token.encode()).hexdigest() in row


def test_tokens_are_distinct(records: Records) -> None:
    issued = {tokens.issue(records, f"uid=u{i},dc=example,dc=com", "enroll", DAY, NOW)
              for i in range(50)}
    assert len(issued) == 50


def test_redeem_once(records: Records) -> None:
    token = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    assert [r.entry for r in tokens.pending(records)] == [ALICE]
    record = tokens.redeem(records, token, "enroll", NOW + dt.timedelta(hours=1))
    assert (record.entry, record.kind, record.escrow_id) == (ALICE, "enroll", None)
    assert record.used == NOW + dt.timedelta(hours=1)
    assert record.expires == NOW + DAY
    assert tokens.pending(records) == []
    with pytest.raises(KMSError, match="already used on 2026-11-25 13:00"):
        tokens.redeem(records, token, "enroll", NOW + dt.timedelta(hours=2))


def test_retyped_token_is_accepted(records: Records) -> None:
    token = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    assert tokens.redeem(records, f"  {token.upper()}\n", "enroll", NOW).entry == ALICE


def test_expired(records: Records) -> None:
    token = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    before = rows(records)
    with pytest.raises(KMSError, match="expired on 2026-11-26 12:00"):
        tokens.redeem(records, token, "enroll", NOW + DAY)
    assert rows(records) == before


@pytest.mark.parametrize("token, message", [
    ("", "not a certdir token"),
    ("hello", "not a certdir token"),
    ("ct-" + "a" * 31, "not a certdir token"),
    ("ct-" + "1" * 32, "not a certdir token"),  # 1 is not in the base32 alphabet
    ("xx-" + "a" * 32, "not a certdir token"),
    ("ct-" + "a" * 32, "unknown token"),
])
def test_malformed_and_unknown(records: Records, token: str, message: str) -> None:
    tokens.issue(records, ALICE, "enroll", DAY, NOW)
    before = rows(records)
    with pytest.raises(KMSError, match=message):
        tokens.redeem(records, token, "enroll", NOW)
    assert rows(records) == before


def test_wrong_kind(records: Records) -> None:
    enroll = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    recovery = tokens.issue(records, ALICE, "recovery", DAY, NOW, escrow_id=7)
    before = rows(records)
    with pytest.raises(KMSError, match="an enrollment token, not a key recovery token"):
        tokens.redeem(records, enroll, "recovery", NOW)
    with pytest.raises(KMSError, match="a key recovery token, not an enrollment token"):
        tokens.redeem(records, recovery, "enroll", NOW)
    assert rows(records) == before
    assert tokens.redeem(records, recovery, "recovery", NOW).escrow_id == 7


def test_superseded(records: Records) -> None:
    old = tokens.issue(records, ALICE, "enroll", DAY, NOW)
    other_kind = tokens.issue(records, ALICE, "recovery", DAY, NOW, escrow_id=1)
    other_entry = tokens.issue(records, BOB, "enroll", DAY, NOW)
    # The same entry written another way is the same entry.
    new = tokens.issue(records, "UID=Alice, DC=example,DC=com", "enroll", DAY,
                       NOW + dt.timedelta(minutes=5))
    with pytest.raises(KMSError, match="superseded by a newer one issued on 2026-11-25 12:05"):
        tokens.redeem(records, old, "enroll", NOW + dt.timedelta(minutes=6))
    assert len(tokens.pending(records)) == 3
    for token, kind in ((new, "enroll"), (other_kind, "recovery"), (other_entry, "enroll")):
        tokens.redeem(records, token, kind, NOW + dt.timedelta(minutes=6))


@pytest.mark.parametrize("entry, kind, lifetime, escrow_id, message", [
    (ALICE, "renew", DAY, None, "unknown token kind 'renew'"),
    (ALICE, "enroll", dt.timedelta(0), None, "lifetime must be positive"),
    (ALICE, "recovery", DAY, None, "names an escrowed key"),
    (ALICE, "enroll", DAY, 3, "names an escrowed key"),
    ("not a dn", "enroll", DAY, None, "not a DN"),
])
def test_issue_refusals(records: Records, entry: str, kind: str,
                        lifetime: dt.timedelta, escrow_id: int | None, message: str) -> None:
    with pytest.raises(KMSError, match=message):
        tokens.issue(records, entry, kind, lifetime, NOW, escrow_id)
    assert rows(records) == []
