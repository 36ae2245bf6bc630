"""The KMS audit log: every KMS action, append-only and hash-chained.

- Each record is (seq, at, actor, action, subject, details) with `prev`, the
  hash of the record before it (64 zeros for the first), and `hash`, the
  SHA-256 hex of prev followed by the canonical JSON (sorted keys, no
  spaces, UTF-8) of [seq, at, actor, action, subject, details].
- Sequence numbers start at 1 and have no gaps. `kms_audit_head` holds the
  last record's seq and hash, written in the same transaction as the record:
  without it, deleting the newest records would leave a chain that still
  verifies.
- `verify` recomputes everything and names each problem: a record whose
  content no longer matches its hash, a missing record (a gap, or records
  missing at the end against the head), a record that does not follow its
  predecessor, a head that disagrees with the last record.
- Details are a flat mapping of strings, integers or nothing; secrets
  (passphrases, tokens, keys) never go in.

The chain itself has no key: whoever can write the database can delete the
newest records and rewrite the head to the last one kept. The log is
therefore *anchored* with a forward-secure MAC (the Bellare-Yee scheme), so
that writers need no passphrase and verifying needs the KMS vault:

- `anchor` draws a random 32-byte key K, stores it sealed under the vault's
  master key (`kms_audit_anchor.sealed`, aad "certdir kms audit anchor v1")
  and also in clear as the *current* key, with `start`, the first record it
  covers. `kms init` anchors a new log from record 1; `certdir audit anchor`
  anchors a log written before anchoring existed, from its next record on.
- Record n (n >= start) is the head at n: its MAC is HMAC-SHA256 under the
  current key K_n of "head", n and the record's chain hash; the next key is
  K_n+1 = HMAC-SHA256(K_n, "next"), which overwrites K_n in the same
  transaction. Only the newest head's MAC is kept (with the key after it).
- Keys only move forward: the key in the database cannot recompute any
  earlier MAC, so a head rewritten to an earlier record, a head or records
  deleted, or a chain recomputed after a change, has no valid MAC.
  `verify` with the vault unlocks K_start and steps it forward to check the
  head's MAC; a head below `start` is a truncation too (every anchoring is
  followed by a record in the same transaction).
- Limits: an attacker holding the database can append forged records (as
  anyone with write access could); a copy of an older head and its MAC (a
  backup, a stale page of the file) allows a rollback to that point, which
  only a copy of the head kept elsewhere (`audit verify` prints it) shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Protocol

from directory.backend import Records
from kms.errors import KMSError

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS kms_audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kms_audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kms_audit_anchor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        start INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        key BLOB NOT NULL,
        mac TEXT
    )""",
)

GENESIS = "0" * 64

Details = Mapping[str, str | int | None]
ANCHOR_AAD = b"certdir kms audit anchor v1"
NOT_ANCHORED = ("the audit log is not anchored, so a truncation would go unnoticed: it was "
                "written before certdir anchored it, or its anchor was deleted; "
                "`certdir audit anchor` anchors it from the next record on")


class Sealer(Protocol):
    """What anchoring needs of the KMS vault (kms.vault.Vault)."""

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hash(prev: str, seq: int, at: str, actor: str, action: str, subject: str,
          details: object) -> str:
    content = _canonical([seq, at, actor, action, subject, details])
    return hashlib.sha256((prev + content).encode()).hexdigest()


def _head(records: Records) -> tuple[int, str] | None:
    row = records.row("SELECT seq, hash FROM kms_audit_head WHERE id = 1")
    return None if row is None else (row[0], row[1])


def _head_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"head {seq} {digest}".encode(), hashlib.sha256).hexdigest()


def _next_key(key: bytes) -> bytes:
    return hmac.new(key, b"next", hashlib.sha256).digest()


def _anchor_row(records: Records) -> tuple[int, bytes, bytes, str | None] | None:
    row = records.row("SELECT start, sealed, key, mac FROM kms_audit_anchor WHERE id = 1")
    return None if row is None else (row[0], row[1], row[2], row[3])


def anchor(records: Records, vault: Sealer) -> int:
    """Anchor the log from its next record on (the caller records one in the
    same transaction); the first record covered."""
    if _anchor_row(records) is not None:
        raise KMSError("the audit log is already anchored")
    start = (_head(records) or (0, GENESIS))[0] + 1
    key = secrets.token_bytes(32)
    records.run("INSERT INTO kms_audit_anchor (id, start, sealed, key, mac)"
                " VALUES (1, ?, ?, ?, NULL)", (start, vault.seal(key, ANCHOR_AAD), key))
    return start


def _advance_anchor(records: Records, seq: int, digest: str) -> None:
    row = _anchor_row(records)
    if row is None:
        return
    key = row[2]
    records.run("UPDATE kms_audit_anchor SET key = ?, mac = ? WHERE id = 1",
                (_next_key(key), _head_mac(key, seq, digest)))


def record(records: Records, actor: str, action: str, subject: str, details: Details,
           now: dt.datetime) -> None:
    last_seq, prev = _head(records) or (0, GENESIS)
    seq = last_seq + 1
    at = now.astimezone(dt.UTC).isoformat(timespec="microseconds")
    plain = dict(details)
    digest = _hash(prev, seq, at, actor, action, subject, plain)
    records.run(
        "INSERT INTO kms_audit (seq, at, actor, action, subject, details, prev, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, subject, _canonical(plain), prev, digest))
    records.run(
        "INSERT INTO kms_audit_head (id, seq, hash) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest))
    _advance_anchor(records, seq, digest)


def _missing(first: int, last: int) -> str:
    return f"record {first} is missing" if first == last else f"records {first}-{last} are missing"


def _content_problem(row: tuple[int, str, str, str, str, str, str, str]) -> str | None:
    seq, at, actor, action, subject, details, prev, stored = row
    try:
        parsed = json.loads(details)
    except ValueError:
        return f"record {seq} was changed: its details are not JSON"
    if _hash(prev, seq, at, actor, action, subject, parsed) != stored:
        return f"record {seq} was changed: its content does not match its hash"
    return None


def _problems(records: Records) -> Iterator[str]:
    expected_seq, expected_prev = 1, GENESIS
    rows = records.rows(
        "SELECT seq, at, actor, action, subject, details, prev, hash FROM kms_audit ORDER BY seq")
    for row in rows:
        seq, prev, stored = row[0], row[6], row[7]
        if seq != expected_seq:
            yield _missing(expected_seq, seq - 1)
        elif prev != expected_prev:
            yield f"record {seq} does not follow record {seq - 1}: the chain is broken"
        problem = _content_problem(row)
        if problem:
            yield problem
        expected_seq, expected_prev = seq + 1, stored
    last_seq = expected_seq - 1
    head = _head(records)
    if head is None:
        if last_seq:
            yield "the audit head is missing"
        return
    head_seq, head_hash = head
    if head_seq > last_seq:
        yield _missing(last_seq + 1, head_seq) + " (deleted at the end of the log)"
    elif head_seq < last_seq:
        yield f"records {head_seq + 1}-{last_seq} were added behind the audit head"
    elif head_hash != expected_prev:
        yield f"the audit head does not match record {head_seq}"


def _anchor_problems(records: Records, vault: Sealer) -> Iterator[str]:
    row = _anchor_row(records)
    if row is None:
        yield NOT_ANCHORED
        return
    start, sealed, _, mac = row
    head_seq, head_hash = _head(records) or (0, GENESIS)
    if head_seq < start:
        yield (f"the audit head is at record {head_seq} but the log was anchored from record "
               f"{start}: records were deleted at the end of the log")
        return
    try:
        key = vault.open(sealed, ANCHOR_AAD)
    except KMSError:
        yield "the audit log's anchor was altered: its sealed key does not open"
        return
    for _ in range(head_seq - start):
        key = _next_key(key)
    if mac is None or not hmac.compare_digest(mac, _head_mac(key, head_seq, head_hash)):
        yield (f"the audit head (record {head_seq}) does not match its anchor: records were "
               "deleted at the end of the log or the head was rewritten")


def verify(records: Records, vault: Sealer | None = None) -> list[str]:
    """One line per problem found in the audit log; an empty list when it is
    intact. With the vault, the anchor is checked too (truncation)."""
    problems = list(_problems(records))
    if vault is not None:
        problems.extend(_anchor_problems(records, vault))
    return problems
