"""The deletes a syncrepl consumer must hear of (RFC 4533 §3.3.2), a bounded log.

- Every delete records, in the transaction that deletes, each entry's
  entryUUID and DN with the delete's CSN (`record`), so a refresh from a
  cookie sends the deletes since it as a syncIdSet instead of making the
  consumer rediscover them by a present phase. A rename records the
  entry's old DN with its new CSN: the provider tells it as a delete to a
  search whose content the entry left, and to no other.
- The log keeps about the newest `kept` deletes (`replication.delete_log`,
  `KEPT` unless configured); pruning remembers the newest CSN it dropped,
  and `since` answers None for a cookie older than that (the log cannot
  tell what it missed: the provider needs a present phase), or for a
  cookie with no CSN at all.
- An entry without an entryUUID (none made by certdir) is never told of.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from directory.backend import Records, Tables
from directory.entry import Entry
from directory.protocol.sync import Cookie, csn_sid

TABLES: Tables = (
    "CREATE TABLE IF NOT EXISTS sync_deletes (id INTEGER PRIMARY KEY, csn TEXT NOT NULL,"
    " uuid BLOB NOT NULL, dn TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sync_deletes_csn ON sync_deletes (csn)",
    "CREATE TABLE IF NOT EXISTS sync_pruned (id INTEGER PRIMARY KEY, csn TEXT NOT NULL)",
)
KEPT = 100_000
# The log is pruned once every this many deletes.
PRUNE_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Deleted:
    csn: str
    uuid: bytes
    dn: str


def entry_uuid(entry: Entry) -> bytes | None:
    """The entry's entryUUID as the 16 octets of a syncUUID."""
    text = entry.first("entryuuid")
    return None if text is None else uuid.UUID(text.decode()).bytes


def record(records: Records, csn: str, entries: Iterable[Entry], kept: int = KEPT) -> None:
    for entry in entries:
        found = entry_uuid(entry)
        if found is None:
            continue
        row = records.row("INSERT INTO sync_deletes (csn, uuid, dn) VALUES (?, ?, ?)"
                          " RETURNING id", (csn, found, str(entry.dn)))
        assert row is not None
        if row[0] % min(PRUNE_EVERY, kept) == 0:
            _prune(records, row[0] - kept)


def _prune(records: Records, last: int) -> None:
    row = records.row("SELECT max(csn) FROM sync_deletes WHERE id <= ?", (last,))
    if row is None or row[0] is None:
        return
    records.run("INSERT INTO sync_pruned (id, csn) VALUES (1, ?) ON CONFLICT (id)"
                " DO UPDATE SET csn = excluded.csn WHERE excluded.csn > sync_pruned.csn",
                (row[0],))
    records.run("DELETE FROM sync_deletes WHERE id <= ?", (last,))


def since(records: Records, cookie: Cookie) -> list[Deleted] | None:
    """The deletes newer than the cookie's CSN of their server id, oldest first."""
    if not cookie.csns:
        return None
    oldest = min(cookie.csns)
    pruned = records.row("SELECT csn FROM sync_pruned WHERE id = 1")
    if pruned is not None and oldest <= pruned[0]:
        return None
    found = []
    for csn, value, dn in records.rows("SELECT csn, uuid, dn FROM sync_deletes WHERE csn > ?"
                                       " ORDER BY csn", (oldest,)):
        seen = cookie.csn_for(csn_sid(csn))
        if seen is None or csn > seen:
            found.append(Deleted(csn, bytes(value), dn))
    return found
