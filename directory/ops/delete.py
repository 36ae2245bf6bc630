"""Delete (RFC 4511 §4.8).

- The entry must exist (noSuchObject with matchedDN).
- Only leaves may be deleted (notAllowedOnNonLeaf), unless the subtree
  delete control is given: then the entry and everything below it go in
  one transaction.
- The naming context's entry can be deleted only when it is a leaf.
- Assertion (RFC 4528) and pre-read (RFC 4527) controls.
"""

from __future__ import annotations

from directory.backend.sqlite import SQLiteTransaction
from directory.entry import Entry
from directory.operation import Operation, Outcome, Reply
from directory.ops import assertion
from directory.ops.readback import read_controls
from directory.protocol.controls import SUBTREE_DELETE
from directory.protocol.messages import SUCCESS, DelRequest, DelResponse
from directory.protocol.results import LDAPError, ResultCode


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, DelRequest)
    dsa = op.dsa
    dn = dsa.parse_dn(request.dn)
    op.detail = f'dn="{request.dn}"'
    whole_subtree = SUBTREE_DELETE in op.controls

    def job(txn: SQLiteTransaction) -> Entry:
        entry = txn.get(dn)
        if entry is None:
            raise dsa.no_such_object(dn)
        assertion.check(op, entry)
        if whole_subtree:
            for doomed in reversed(list(txn.subtree(dn))):
                txn.delete(doomed.dn)
            return entry
        if txn.has_children(dn):
            raise LDAPError(ResultCode.NOT_ALLOWED_ON_NON_LEAF, f"{dn} has subordinates")
        txn.delete(dn)
        return entry

    return dsa.write(job).addCallback(
        lambda entry: [Reply(DelResponse(SUCCESS), read_controls(op, entry, None))])
