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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping

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
)

GENESIS = "0" * 64

Details = Mapping[str, str | int | None]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hash(prev: str, seq: int, at: str, actor: str, action: str, subject: str,
          details: object) -> str:
    content = _canonical([seq, at, actor, action, subject, details])
    return hashlib.sha256((prev + content).encode()).hexdigest()


def _head(conn: sqlite3.Connection) -> tuple[int, str] | None:
    row = conn.execute("SELECT seq, hash FROM kms_audit_head WHERE id = 1").fetchone()
    return None if row is None else (row[0], row[1])


def record(conn: sqlite3.Connection, actor: str, action: str, subject: str, details: Details,
           now: dt.datetime) -> None:
    last_seq, prev = _head(conn) or (0, GENESIS)
    seq = last_seq + 1
    at = now.astimezone(dt.UTC).isoformat(timespec="microseconds")
    plain = dict(details)
    digest = _hash(prev, seq, at, actor, action, subject, plain)
    conn.execute(
        "INSERT INTO kms_audit (seq, at, actor, action, subject, details, prev, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, subject, _canonical(plain), prev, digest))
    conn.execute(
        "INSERT INTO kms_audit_head (id, seq, hash) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest))


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


def _problems(conn: sqlite3.Connection) -> Iterator[str]:
    expected_seq, expected_prev = 1, GENESIS
    rows = conn.execute(
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
    head = _head(conn)
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


def verify(conn: sqlite3.Connection) -> list[str]:
    """One line per problem found in the audit log; an empty list when it is intact."""
    return list(_problems(conn))
