"""Whether any connection committed to a WAL database since the last look,
without starting a read transaction.

- Asking SQLite (`PRAGMA data_version`) starts a read transaction, and each
  one takes and drops a POSIX lock on the `-shm` file: two fcntl calls. At
  the start of every operation that was a fifteenth of a mail lookup's
  time at 32 connections (py-spy, 100,000 entries).
- A commit in WAL mode is published by rewriting the wal-index header, the
  first 96 bytes of the `-shm` file: two copies of a 48-byte header whose
  frame count, frame checksums and salts change with every transaction that
  writes a page, in any process (sqlite.org/walformat.html, "The WAL-Index
  Header"). SQLite maps that file shared, so reading the header through our
  own read-only mapping is a memory compare.
- Unchanged bytes mean nothing was committed since they were read last, so
  there is nothing to ask SQLite. Changed bytes (a commit, or one being
  published while they were read) send the caller to `data_version`; the
  bytes are taken before it asks, so a commit that lands meanwhile changes
  them again and is seen next time.
- The `-shm` file lives while any connection has the database open in WAL
  mode, and the caller's reader keeps it open: a watch is made for each
  reader connection and closed with it. Without the file (the database is
  not in WAL mode) every look says "moved", and the caller asks SQLite each
  time, as it did before.
"""

from __future__ import annotations

import mmap
from pathlib import Path

HEADER = 96


class CommitWatch:
    __slots__ = ("_last", "_map")

    def __init__(self, database: Path) -> None:
        self._last = b""
        self._map: mmap.mmap | None = None
        try:
            with open(f"{database}-shm", "rb") as shm:
                self._map = mmap.mmap(shm.fileno(), HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            self._map = None

    def moved(self) -> bool:
        """True unless the header is what it was at the last call."""
        if self._map is None:
            return True
        header = self._map[:HEADER]
        if header == self._last:
            return False
        self._last = header
        return True

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
