"""The syncrepl provider as an overlay (slapo-syncprov's place in the stack).

- A search with the sync request control (RFC 4533) is answered by
  `directory.replication.provider`; every other operation passes on after
  one look at its controls, so nothing else pays for replication.
"""

from __future__ import annotations

from directory.operation import Handler, Operation, Outcome
from directory.protocol.sync import SYNC_REQUEST
from directory.replication import provider


def overlay(handler: Handler) -> Handler:
    def sync(op: Operation) -> Outcome:
        if SYNC_REQUEST not in op.controls:
            return handler(op)
        return provider.handle(op)

    return sync
