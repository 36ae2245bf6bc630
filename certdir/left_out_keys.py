"""The index keys a bulk load leaves out, told by `certdir ldif import`'s
storing process to its worker processes (`Transaction.left_out`).

- The grams most entries hold (index_stats.py, `unkept`) are a third of
  the index rows a worker gathers for an address book, which the storing
  process then drops: a worker that knows them gathers, formats and sends
  none of their places.
- The storing process publishes the keys after each batch it stores, when
  there are more than it last published; a worker reads them before each
  piece it prepares. A worker that has not seen them yet, or keys that do
  not fit in `LIMIT` bytes, only cost what they cost before: the storing
  process drops the postings of a key it left out whoever gathered them.
- One shared block of memory, made before the workers are forked, holds
  the keys in marshal's form after their length; a lock keeps a read from
  seeing half a write.
"""

from __future__ import annotations

import ctypes
import marshal
import struct
from multiprocessing.context import BaseContext

from directory.backend.postings import LeftOut

LIMIT = 1 << 16
_LENGTH = struct.Struct("<I")


class LeftOutKeys:
    def __init__(self, context: BaseContext) -> None:
        self._block = context.Array(ctypes.c_char, LIMIT)
        self._published = 0

    def publish(self, keys: LeftOut) -> None:
        """Tell the workers `keys`, if they are more than last told."""
        count = sum(map(len, keys.values()))
        if count <= self._published:
            return
        data = marshal.dumps(dict(keys))
        if _LENGTH.size + len(data) > LIMIT:
            return
        with self._block.get_lock():
            self._block.raw = _LENGTH.pack(len(data)) + data
        self._published = count

    def read(self) -> LeftOut:
        """The keys published so far."""
        with self._block.get_lock():
            raw = self._block.raw
        length, = _LENGTH.unpack_from(raw)
        keys: LeftOut = marshal.loads(raw[_LENGTH.size:_LENGTH.size + length]) if length else {}
        return keys
