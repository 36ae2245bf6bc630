"""One-time tokens: enrollment and key recovery (issue 5, parts 2 and 4).

- A token is "ct-" and the base32 (RFC 4648 §6, lower case, no padding) of
  20 random bytes from `secrets`: 160 bits, more than the 128 the issue asks.
  It is shown once, when issued; the database keeps only its SHA-256, so a
  copy of the database redeems nothing.
- A token is bound to one directory entry and one kind ("enroll" or
  "recovery"; a recovery token also to one escrowed key), expires after its
  lifetime and is used at most once.
- Each entry has at most one pending token of a kind: issuing another
  supersedes the older one, which is refused from then on.
- Redeeming refuses, with a message saying why, a malformed token, an
  unknown one, one of the other kind, a used, superseded or expired one.
  `check` gives the same answer without using the token (a redemption
  prepares its slow part before its transaction); `redeem` marks it used
  only if it is still unused, so of two transactions redeeming one token
  exactly one succeeds.
- Every function works in the caller's transaction and never commits.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from directory.backend import Records
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError
from kms.errors import KMSError

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS kms_tokens (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        entry TEXT NOT NULL,
        entry_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        used TEXT,
        superseded TEXT,
        escrow_id INTEGER)""",
    "CREATE INDEX IF NOT EXISTS kms_tokens_entry ON kms_tokens (entry_key, kind)",
)

# Each kind, as a refusal names it.
KINDS: Mapping[str, str] = {"enroll": "an enrollment token", "recovery": "a key recovery token"}
PREFIX = "ct-"
_RANDOM_BYTES = 20
_SHAPE = re.compile(r"ct-[a-z2-7]{32}")


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    entry: str
    kind: str
    created: dt.datetime
    expires: dt.datetime
    used: dt.datetime | None
    escrow_id: int | None
    superseded: dt.datetime | None = None


def entry_key(entry_dn: str) -> str:
    """The normalised form that binds tokens (and officers) to an entry."""
    try:
        return DN.parse(entry_dn).normalized
    except LDAPError as e:
        raise KMSError(f"not a DN: {entry_dn!r} ({e.message})") from None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


_COLUMNS = "id, entry, kind, created, expires, used, escrow_id, superseded"


def _record(row: tuple[int, str, str, str, str, str | None, int | None, str | None]
            ) -> TokenRecord:
    id_, entry, kind, created, expires, used, escrow_id, superseded = row
    return TokenRecord(id_, entry, kind, dt.datetime.fromisoformat(created),
                       dt.datetime.fromisoformat(expires), _when(used), escrow_id,
                       _when(superseded))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise KMSError(f"unknown token kind {kind!r} (known: {', '.join(sorted(KINDS))})")


def issue(records: Records, entry_dn: str, kind: str, lifetime: dt.timedelta,
          now: dt.datetime, escrow_id: int | None = None) -> str:
    """A new token for `entry_dn`, in clear; this is the only time it is seen."""
    _check_kind(kind)
    if lifetime <= dt.timedelta(0):
        raise KMSError("a token's lifetime must be positive")
    if (kind == "recovery") != (escrow_id is not None):
        raise KMSError("a recovery token, and only a recovery token, names an escrowed key")
    key = entry_key(entry_dn)
    records.run("UPDATE kms_tokens SET superseded=? WHERE entry_key=? AND kind=?"
                " AND used IS NULL AND superseded IS NULL", (now.isoformat(), key, kind))
    random = base64.b32encode(secrets.token_bytes(_RANDOM_BYTES)).decode().rstrip("=").lower()
    token = PREFIX + random
    records.run("INSERT INTO kms_tokens (digest, entry, entry_key, kind, created, expires,"
                " escrow_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_digest(token), entry_dn, key, kind, now.isoformat(),
                 (now + lifetime).isoformat(), escrow_id))
    return token


def _refusal(record: TokenRecord, kind: str, now: dt.datetime) -> str | None:
    if record.kind != kind:
        return f"this is {KINDS[record.kind]}, not {KINDS[kind]}"
    if record.used is not None:
        return f"this token was already used on {record.used:%Y-%m-%d %H:%M} UTC"
    if record.superseded is not None:
        return (f"this token was superseded by a newer one issued on "
                f"{record.superseded:%Y-%m-%d %H:%M} UTC")
    if record.expires <= now:
        return f"this token expired on {record.expires:%Y-%m-%d %H:%M} UTC"
    return None


def check(records: Records, token: str, kind: str, now: dt.datetime) -> TokenRecord:
    """The pending token of `kind`, unchanged; KMSError saying why it is not one."""
    _check_kind(kind)
    # Tokens are read aloud and retyped: case and surrounding blanks do not matter.
    clear = token.strip().lower()
    if _SHAPE.fullmatch(clear) is None:
        raise KMSError("not a certdir token (they look like ct- and 32 letters and digits)")
    row = records.row(f"SELECT {_COLUMNS} FROM kms_tokens WHERE digest=?", (_digest(clear),))
    if row is None:
        raise KMSError("unknown token")
    record = _record(row)
    refusal = _refusal(record, kind, now)
    if refusal is not None:
        raise KMSError(refusal)
    return record


def redeem(records: Records, token: str, kind: str, now: dt.datetime) -> TokenRecord:
    """Mark a pending token of `kind` used and return it; KMSError saying why not."""
    record = check(records, token, kind, now)
    # Only a still unused token changes: the transaction that redeems it first wins.
    updated = records.run("UPDATE kms_tokens SET used=? WHERE id=? AND used IS NULL"
                          " AND superseded IS NULL", (now.isoformat(), record.id))
    if updated != 1:
        raise KMSError("this token was already used")
    return TokenRecord(record.id, record.entry, record.kind, record.created, record.expires,
                       now, record.escrow_id)


def pending(records: Records) -> list[TokenRecord]:
    """Tokens neither used nor superseded (expired ones included), oldest first."""
    rows = records.rows(f"SELECT {_COLUMNS} FROM kms_tokens WHERE used IS NULL"
                        " AND superseded IS NULL ORDER BY created, id")
    return [_record(row) for row in rows]
