"""Pre-read and post-read controls (RFC 4527).

The response control's value is a SearchResultEntry holding the requested
attributes of the entry as it was before (pre-read) or after (post-read)
the update, read inside the same transaction. Attributes the requester
may not read are left out, as in a search (`visibility`).
"""

from __future__ import annotations

from directory.entry import Entry
from directory.operation import Operation
from directory.ops.visibility import hidden_in_readback, view_of
from directory.protocol.ber import tlv
from directory.protocol.controls import POST_READ, PRE_READ, AttributeSelection
from directory.protocol.messages import Control
from directory.selection import encode_entry, select


def read_controls(op: Operation, before: Entry | None,
                  after: Entry | None) -> tuple[Control, ...]:
    controls = []
    for oid, entry in ((PRE_READ, before), (POST_READ, after)):
        selection = op.controls.get(oid)
        if entry is None or not isinstance(selection, AttributeSelection):
            continue
        chosen = select(op.dsa.schema, selection.attributes)
        wanted = None if chosen.all_user or chosen.all_operational else chosen.names
        hidden = hidden_in_readback(view_of(op), entry, wanted)
        body = encode_entry(op.dsa.schema, entry, chosen, False, hidden, {})
        controls.append(Control(oid, False, tlv(0x64, body)))
    return tuple(controls)
