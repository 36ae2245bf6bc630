"""Modify DN (RFC 4511 §4.9).

- The entry must exist; the new DN must not (entryAlreadyExists).
- newSuperior must exist and must not be the entry or below it
  (unwillingToPerform); the entry cannot leave the naming context.
- The new RDN's values are added to the entry; with deleteOldRDN the old
  RDN's values are removed; the result must still pass schema checks.
- Moving a subtree moves every descendant in the same transaction.
- The renamed entry's old DN goes to the syncrepl delete log with its new
  entryCSN (`directory.replication.deletes`): a sync search whose content
  it leaves hears of it as a delete.
- Assertion (RFC 4528), pre-read and post-read (RFC 4527) controls.
- Access (`privileges`): write on the entry, delete on the old parent's
  `children`, add on the new parent's, add (and with deleteOldRDN delete)
  on the RDN attributes, checked in the transaction; an entry or new
  superior not disclosed to the requester is noSuchObject.
"""

from __future__ import annotations

from directory.backend import Transaction
from directory.dsa import DSA
from directory.entry import Entry
from directory.operation import Operation, Outcome, Reply
from directory.operational import stamp_modified
from directory.ops import assertion, privileges
from directory.ops.readback import read_controls
from directory.ops.visibility import view_of
from directory.protocol.dn import DN
from directory.protocol.messages import SUCCESS, ModifyDNRequest, ModifyDNResponse
from directory.protocol.results import LDAPError, ResultCode
from directory.replication import deletes


def rename(dsa: DSA, txn: Transaction, dn: DN, new_rdn_dn: DN, delete_old_rdn: bool,
           new_superior: DN | None, actor: DN) -> tuple[Entry, Entry]:
    """Rename (and move) the entry at `dn`; return it before and after."""
    schema = dsa.schema
    if len(new_rdn_dn) != 1:
        raise LDAPError(ResultCode.INVALID_DN_SYNTAX, f"bad new RDN {new_rdn_dn}")
    new_rdn = new_rdn_dn.rdn
    superior = dn.parent if new_superior is None else new_superior
    if not dn or dn == dsa.suffix:
        raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "cannot rename the naming context")
    if superior.is_descendant_of(dn):
        raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, "new superior is the entry or below it")
    if not superior.is_descendant_of(dsa.suffix):
        raise LDAPError(ResultCode.AFFECTS_MULTIPLE_DSAS,
                        f"new superior {superior} is outside the naming context")
    new_dn = superior.child(new_rdn)
    entry = txn.get(dn)
    if entry is None:
        raise dsa.no_such_object(dn)
    if new_dn != dn and txn.get(new_dn) is not None:
        raise LDAPError(ResultCode.ENTRY_ALREADY_EXISTS, f"entry {new_dn} already exists")
    if txn.get(superior) is None:
        raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"new superior {superior} does not exist",
                        matched=dsa.matched(superior))
    attrs = dict(entry.attributes)
    if delete_old_rdn:
        for ava in dn.rdn.avas:
            kept = tuple(v for v in attrs.get(ava.key, ())
                         if schema.normalize_value(ava.key, v.decode(errors="replace"))
                         != ava.norm)
            if kept:
                attrs[ava.key] = kept
            else:
                attrs.pop(ava.key, None)
    for ava in new_rdn.avas:
        if schema.attribute(ava.key).no_user_modification:
            raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                            f"{ava.attribute} cannot be used in an RDN")
        current = attrs.get(ava.key, ())
        norms = {schema.normalize_value(ava.key, v.decode(errors="replace")) for v in current}
        if ava.norm not in norms:
            attrs[ava.key] = (*current, ava.value.encode())
    schema.check_entry(new_dn, attrs)
    stamp_modified(dsa, attrs, actor)
    moved = Entry(new_dn, attrs, entry.id)
    txn.rename(dn, moved)
    csn = moved.first("entrycsn")
    assert csn is not None, "stamp_modified gives every change a CSN"
    deletes.record(txn.records, csn.decode(), [entry], dsa.config.delete_log)
    return entry, moved


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, ModifyDNRequest)
    dsa = op.dsa
    dn = op.target
    op.detail = f'dn="{request.dn}" newrdn="{request.new_rdn}"'
    new_rdn = dsa.parse_dn(request.new_rdn)
    superior = None if request.new_superior is None else dsa.parse_dn(request.new_superior)

    def job(txn: Transaction) -> tuple[Entry, Entry]:
        view = view_of(op).reading(txn.get)
        entry = privileges.disclosed(view, dn)
        privileges.rename(dsa, view, entry, new_rdn, request.delete_old_rdn, superior)
        assertion.check(op, entry, view)
        return rename(dsa, txn, dn, new_rdn, request.delete_old_rdn, superior,
                      op.session.bound)

    return dsa.write(job).addCallback(
        lambda pair: [Reply(ModifyDNResponse(SUCCESS), read_controls(op, pair[0], pair[1]))])
