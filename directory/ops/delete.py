"""Delete (RFC 4511 §4.8).

- The entry must exist (noSuchObject with matchedDN).
- Only leaves may be deleted (notAllowedOnNonLeaf), unless the subtree
  delete control is given: then the entry and everything below it go in
  one transaction.
- The naming context's entry can be deleted only when it is a leaf.
- Assertion (RFC 4528) and pre-read (RFC 4527) controls.
- Access (`privileges`): delete on the entry's `entry` and on its parent's
  `children`, for every entry a subtree delete removes; an entry not
  disclosed to the requester is noSuchObject.
- Every entry deleted goes into the syncrepl delete log with the delete's
  CSN, in the same transaction (`directory.replication.deletes`).
"""

from __future__ import annotations

from directory.backend import Transaction
from directory.entry import Entry
from directory.operation import Operation, Outcome, Reply
from directory.ops import assertion, privileges
from directory.ops.readback import read_controls
from directory.ops.visibility import view_of
from directory.protocol.controls import SUBTREE_DELETE
from directory.protocol.messages import SUCCESS, DelRequest, DelResponse
from directory.protocol.results import LDAPError, ResultCode
from directory.replication import deletes


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, DelRequest)
    dsa = op.dsa
    dn = op.target
    op.detail = f'dn="{request.dn}"'
    whole_subtree = SUBTREE_DELETE in op.controls

    def job(txn: Transaction) -> Entry:
        view = view_of(op).reading(txn.get)
        entry = privileges.disclosed(view, dn)
        privileges.delete(dsa, view, entry)
        assertion.check(op, entry, view)
        if whole_subtree:
            doomed = list(txn.subtree(dn))
            for below in doomed:
                privileges.delete(dsa, view, below)
            for below in reversed(doomed):
                txn.delete(below.dn)
            deletes.record(txn.records, dsa.csn.next(dsa.now()), doomed,
                           dsa.config.delete_log)
            return entry
        if txn.has_children(dn):
            raise LDAPError(ResultCode.NOT_ALLOWED_ON_NON_LEAF, f"{dn} has subordinates")
        txn.delete(dn)
        deletes.record(txn.records, dsa.csn.next(dsa.now()), [entry], dsa.config.delete_log)
        return entry

    return dsa.write(job).addCallback(
        lambda entry: [Reply(DelResponse(SUCCESS), read_controls(op, entry, None))])
