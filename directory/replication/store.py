"""What a consumer keeps beside the entries it replicates, in the same
transactions as the entries (so it can never disagree with them).

- `sync_cookies`: the provider's newest cookie, per rid; a restart sends it
  and the provider sends only what changed since (RFC 4533 §3.3).
- `sync_entries`: the DN each replicated entry has here, by its entryUUID
  (the lower-case text form): syncrepl names deletes, syncIdSets and
  renames by entryUUID alone (RFC 4533 §2.3, §2.5).
- Every statement is in the portable dialect of `directory.backend.Records`.
"""

from __future__ import annotations

from collections.abc import Iterable

from directory.backend import Records, Tables

TABLES: Tables = (
    """CREATE TABLE IF NOT EXISTS sync_cookies (
        rid INTEGER PRIMARY KEY,
        cookie BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sync_entries (
        rid INTEGER NOT NULL,
        uuid TEXT NOT NULL,
        dn TEXT NOT NULL,
        PRIMARY KEY (rid, uuid))""",
)


def cookie(records: Records, rid: int) -> bytes | None:
    row = records.row("SELECT cookie FROM sync_cookies WHERE rid = ?", (rid,))
    return None if row is None else bytes(row[0])


def save_cookie(records: Records, rid: int, value: bytes) -> None:
    records.run("INSERT INTO sync_cookies (rid, cookie) VALUES (?, ?)"
                " ON CONFLICT (rid) DO UPDATE SET cookie = excluded.cookie", (rid, value))


def forget_cookie(records: Records, rid: int) -> None:
    records.run("DELETE FROM sync_cookies WHERE rid = ?", (rid,))


def dn_of(records: Records, rid: int, uuid: str) -> str | None:
    row = records.row("SELECT dn FROM sync_entries WHERE rid = ? AND uuid = ?", (rid, uuid))
    return None if row is None else str(row[0])


def remember(records: Records, rid: int, uuid: str, dn: str) -> None:
    records.run("INSERT INTO sync_entries (rid, uuid, dn) VALUES (?, ?, ?)"
                " ON CONFLICT (rid, uuid) DO UPDATE SET dn = excluded.dn", (rid, uuid, dn))


def forget(records: Records, rid: int, uuid: str) -> None:
    records.run("DELETE FROM sync_entries WHERE rid = ? AND uuid = ?", (rid, uuid))


def replicated(records: Records, rid: int) -> Iterable[tuple[str, str]]:
    """(entryUUID, DN) of every entry replicated from `rid`."""
    return [(str(u), str(d)) for u, d in
            records.rows("SELECT uuid, dn FROM sync_entries WHERE rid = ?", (rid,))]
