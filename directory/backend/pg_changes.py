"""What a commit on PostgreSQL tells the other front ends, and how they hear
it (the cache argument is postgres.py's).

- `announce`, inside a write transaction that changed entries, increments
  the one row of `generation` (locking it until the commit, so generations
  are numbered in commit order with no gaps) and NOTIFYs
  "<generation> <ids>" on `CHANNEL`, or "<generation> everything" when the
  ids do not fit PostgreSQL's 8000-byte payload.
- `Listener` holds a connection LISTENing on `CHANNEL` on a thread of its
  own and appends each (generation, ids) to a queue; ids None means any
  entry may have changed. A payload certdir did not send is ignored: the
  generation check covers whatever it stood for. A lost connection is
  opened again a second later; what was missed meanwhile shows as missing
  generations.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

import psycopg

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
# The ids a commit changed; None: any entry may have changed.
Changed: TypeAlias = frozenset[int] | None

CHANNEL = "certdir_changes"
EVERYTHING = "everything"
# PostgreSQL's NOTIFY payload limit is 8000 bytes.
MAX_PAYLOAD = 7900
# How often the listener looks up from its connection, so `close` is quick.
LISTEN_WAKE = 0.1
# How long a listener that lost its connection waits before opening another.
RECONNECT_WAIT = 1.0


def announce(conn: Connection, ids: frozenset[int]) -> int:
    """Number this commit and tell every front end what it changed."""
    row = conn.execute("UPDATE generation SET n = n + 1 RETURNING n", prepare=True).fetchone()
    assert row is not None
    generation = int(row[0])
    payload = f"{generation} {' '.join(map(str, sorted(ids)))}"
    if len(payload) > MAX_PAYLOAD:
        payload = f"{generation} {EVERYTHING}"
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload), prepare=True)
    return generation


class Listener:
    """A connection LISTENing for commits; queues (generation, ids) pairs.
    LISTEN is in effect when the constructor returns. `connect` opens an
    autocommit connection to the database."""

    def __init__(self, connect: Callable[[], Connection],
                 changes: deque[tuple[int, Changed]]) -> None:
        self._connect = connect
        self._changes = changes
        self._stopping = threading.Event()
        self._conn = self._listen()
        self._thread = threading.Thread(target=self._run, name="certdir-listener", daemon=True)
        self._thread.start()

    def _listen(self) -> Connection:
        conn = self._connect()
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                for note in self._conn.notifies(timeout=LISTEN_WAKE):
                    change = _parsed(note.payload)
                    if change is not None:
                        self._changes.append(change)
            except psycopg.Error:
                self._conn.close()
                self._stopping.wait(RECONNECT_WAIT)
                try:
                    self._conn = self._listen()
                except psycopg.Error:
                    continue

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._conn.close()


def _parsed(payload: str) -> tuple[int, Changed] | None:
    """A notification's generation and ids; None for one certdir did not send."""
    generation, _, ids = payload.partition(" ")
    try:
        return int(generation), None if ids == EVERYTHING else frozenset(map(int, ids.split()))
    except ValueError:
        return None
