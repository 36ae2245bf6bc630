"""Change sequence numbers for entryCSN (the form OpenLDAP's syncrepl uses:
`YYYYmmddHHMMSS.ffffffZ#counter#sid#mod`).

CSNs from one generator are strictly increasing even when the clock does
not move or steps back: the counter breaks ties and the last time is kept
when the clock goes backwards. The server id (sid) is the node number the
backend gave this opening (`Backend.node`), so CSNs of processes and front
ends sharing a database never collide; it has three hex digits, and one
outside 0..MAX_NODE is refused.
"""

from __future__ import annotations

import datetime as dt
import threading

from directory.backend import MAX_NODE


class CSNGenerator:
    def __init__(self, server_id: int = 0) -> None:
        if not 0 <= server_id <= MAX_NODE:
            raise ValueError(f"a CSN server id is 0..{MAX_NODE}, not {server_id}")
        self.server_id = server_id
        self._last = ""
        self._counter = 0
        # The last CSN `next` gave, "" before the first.
        self.last = ""
        self._lock = threading.Lock()
        self._second: dt.datetime | None = None
        self._prefix = ""

    def next(self, now: dt.datetime) -> str:
        utc = now.astimezone(dt.UTC)
        second = utc.replace(microsecond=0)
        with self._lock:
            if second != self._second:  # strftime once a second, not per change
                self._second, self._prefix = second, utc.strftime("%Y%m%d%H%M%S")
            stamp = f"{self._prefix}.{utc.microsecond:06d}Z"
            if stamp <= self._last:
                stamp = self._last
                self._counter += 1
            else:
                self._last = stamp
                self._counter = 0
            self.last = f"{stamp}#{self._counter:06x}#{self.server_id:03x}#000000"
            return self.last


def generalized_time(csn: str) -> bytes:
    """The GeneralizedTime (whole seconds) of a CSN, for the timestamps that
    go with it: one clock reading and one formatting per change."""
    return (csn[:14] + "Z").encode()
