"""Node numbers on PostgreSQL (`Backend.node`): one per opening of the database.

- A number is a session-level advisory lock, `pg_try_advisory_lock(NAMESPACE,
  n)`, held on a connection of its own for as long as the backend is open:
  the opening gets the lowest n from its local number (the configured
  server id plus the worker) to MAX_NODE that no live session holds, so a
  multi-provider node's CSNs keep to its own range of server ids.
- The lock goes with the session (closed, its process killed, its
  connection lost), so a crashed front end's number is free again at once
  and there is no table to clean; advisory locks are per database, so
  databases on one server number their nodes independently.
- With every number from there on held, opening fails with
  `NodesExhausted`: CSNs have three hex digits of server id, and a number
  shared by two live openings could give two changes one CSN.
- The number is only as safe as its session: if the connection drops while
  the backend stays open (the database server restarted), another opening
  may take the number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from directory.backend import MAX_NODE

if TYPE_CHECKING:
    import psycopg

# The first key of certdir's advisory locks ("cert").
NAMESPACE = 0x63657274


class NodesExhausted(Exception):
    """Every node number is held by a live opening of the database."""


class NodeNumber:
    """The lowest node number from `first` free in the database, held on
    `conn` (an autocommit connection of its own, closed by `release`)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], first: int) -> None:
        self._conn = conn
        for number in range(first, MAX_NODE + 1):
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                     (NAMESPACE, number)).fetchone()
            if row is not None and row[0]:
                self.number = number
                return
        self._conn.close()
        raise NodesExhausted(f"all {MAX_NODE + 1 - first} node numbers of this database from "
                             f"{first} are held by open front ends and commands")

    def release(self) -> None:
        self._conn.close()
