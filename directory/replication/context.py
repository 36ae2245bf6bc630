"""contextCSN (OpenLDAP's, 1.3.6.1.4.1.4203.666.1.25): the newest CSN
committed in the naming context, one value per server id.

- Every transaction that may stamp CSNs records the newest CSN its process
  issued (`record`), in that transaction: the server's writer after each
  job, the CA's commands and LDIF import at their end (`DSA.stamped`). A
  value never goes back; each server id has its own row, so front ends
  sharing a database do not wait for each other's.
- The suffix entry shows the values as the operational attribute
  contextCSN, computed when read (`values`), in server id order; the
  default access rules let only the root DN read it, configured rules
  name the replication identities that may.
"""

from __future__ import annotations

from directory.backend import Records, Tables
from directory.protocol.sync import csn_sid

TABLES: Tables = (
    "CREATE TABLE IF NOT EXISTS sync_context (sid INTEGER PRIMARY KEY, csn TEXT NOT NULL)",
)


def record(records: Records, csn: str) -> None:
    records.run("INSERT INTO sync_context (sid, csn) VALUES (?, ?) ON CONFLICT (sid)"
                " DO UPDATE SET csn = excluded.csn WHERE excluded.csn > sync_context.csn",
                (csn_sid(csn), csn))


def newest(records: Records, sid: int) -> str:
    """The contextCSN of `sid`; "" before its first."""
    row = records.row("SELECT csn FROM sync_context WHERE sid = ?", (sid,))
    return "" if row is None else str(row[0])


def values(records: Records) -> tuple[bytes, ...]:
    return tuple(row[0].encode() for row in records.rows(
        "SELECT csn FROM sync_context ORDER BY sid"))
