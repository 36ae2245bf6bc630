"""Change sequence numbers for entryCSN (the form OpenLDAP's syncrepl uses:
`YYYYmmddHHMMSS.ffffffZ#counter#sid#mod`).

CSNs from one generator are strictly increasing even when the clock does
not move or steps back: the counter breaks ties and the last time is kept
when the clock goes backwards.
"""

from __future__ import annotations

import datetime as dt
import threading


class CSNGenerator:
    def __init__(self, server_id: int = 0) -> None:
        self.server_id = server_id
        self._last = ""
        self._counter = 0
        self._lock = threading.Lock()

    def next(self, now: dt.datetime) -> str:
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S.%fZ")
        with self._lock:
            if stamp <= self._last:
                stamp = self._last
                self._counter += 1
            else:
                self._last = stamp
                self._counter = 0
            return f"{stamp}#{self._counter:06x}#{self.server_id:03x}#000000"


def generalized_time(now: dt.datetime) -> bytes:
    return now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode()
