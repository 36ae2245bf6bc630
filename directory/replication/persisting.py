"""The persist searches in progress, and how many there may be (RFC 4533 §3.4).

- A refreshAndPersist search counts from its start, before its refresh,
  until it ends: once it is no longer outstanding on its connection
  (it ended, was abandoned or canceled, or its connection closed) it no
  longer counts.
- One connection may hold `limits.max_persist_searches` of them, one
  serving process `limits.max_persist_searches_total`; a search beyond
  either is refused before its refresh with busy (51: too busy to
  service the operation, RFC 4511 §A.2); the connection stays up, and
  the search may be asked again once another has ended. slapd's syncprov
  sets no such limit; busy is what slapd answers an operation beyond its
  limit of outstanding operations (back-asyncmeta's max-pending-ops,
  "Maximum pending ops limit exceeded").
"""

from __future__ import annotations

from directory.operation import Operation
from directory.protocol.results import LDAPError, ResultCode


class PersistSearches:
    """The persist searches of one serving process."""

    def __init__(self, per_connection: int, total: int) -> None:
        self.per_connection = per_connection
        self.total = total
        self._running: list[Operation] = []

    def admit(self, op: Operation) -> None:
        """Count `op` in, or refuse it with busy when a limit is reached."""
        self._running = [each for each in self._running if _outstanding(each)]
        mine = sum(1 for each in self._running if each.session is op.session)
        if mine >= self.per_connection:
            raise LDAPError(ResultCode.BUSY, f"this connection holds {mine} persist searches, "
                                             "limits.max_persist_searches")
        if len(self._running) >= self.total:
            raise LDAPError(ResultCode.BUSY, f"the server holds {len(self._running)} persist "
                                             "searches, limits.max_persist_searches_total")
        self._running.append(op)


def _outstanding(op: Operation) -> bool:
    return not op.abandoned and op.session.outstanding.get(op.message_id) is op
