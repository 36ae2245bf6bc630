"""Whether anything was committed to a WAL database, without a statement.

- SQLite's WAL index, `<database>-shm`, is shared by every connection of
  every process. It begins with the index header (change counter, frames
  in the log, their running checksum, the log's salts), which every commit
  rewrites before its COMMIT returns. So one pread of those bytes tells a
  reader whether anything was committed since it last read them, where
  `PRAGMA data_version` is a statement with a read transaction and its file
  locks. A checkpoint that restarts the log changes the header too: only a
  needless look at data_version.
- The descriptor is never closed while a connection of this process may
  use the file. POSIX record locks belong to a process and a file, and
  closing *any* descriptor of the file drops all of them, SQLite's read
  marks included: another process then takes itself for the first and
  rebuilds the index under this one. So each file's descriptor is kept
  for the life of the process, shared by every watch of that path, and
  replaced only when the path names another file: SQLite deleted the old
  one when the last connection to the database (in any process) closed,
  so no connection can hold a lock on it.
- No watch (`None`) when the index file is not there: the caller looks at
  data_version every time. A read short of the header (a file being
  reset) is no stamp either, never taken for "unchanged".
"""

from __future__ import annotations

import os
from pathlib import Path

# sizeof(WalIndexHdr): the first of the header's two copies.
HEADER_BYTES = 48

_OPEN: dict[str, int] = {}


class WalWatch:
    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    @staticmethod
    def open(database: Path) -> WalWatch | None:
        """A watch of `database`'s WAL index, once a connection opened it in WAL mode."""
        path = os.path.abspath(f"{database}-shm")
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        descriptor = _OPEN.get(path)
        if descriptor is not None:
            held = os.fstat(descriptor)
            if (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino):
                return WalWatch(descriptor)
            os.close(descriptor)
        descriptor = _OPEN[path] = os.open(path, os.O_RDONLY)
        return WalWatch(descriptor)

    def stamp(self) -> bytes | None:
        """The index header as it is now; None when it could not be read whole."""
        header = os.pread(self._descriptor, HEADER_BYTES, 0)
        return header if len(header) == HEADER_BYTES else None
