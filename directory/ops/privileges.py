"""The privileges each operation needs (slapd.access(5), "OPERATION
REQUIREMENTS"), checked through the operation's access view; updates check
them inside the writer's transaction, against the entries as read there.

- An entry the requester has no disclose (d) on is answered as if it did
  not exist: noSuchObject, with a matchedDN only when that ancestor is
  disclosed (as slapd does).
- Search: search (s) on the base's `entry`; with disclose but not search,
  insufficientAccessRights.
- Compare: compare (c) on the attribute.
- Add: add (a) on the parent's `children` (for the naming context's own
  entry, on the `children` of the empty DN), on the new entry's `entry`
  and on every attribute given.
- Delete: delete (z) on the entry's `entry` and on its parent's `children`;
  with the subtree delete control, on every entry removed.
- Modify: add to add values, delete to delete them, both to replace them
  or to increment; replace without values only deletes.
- Modify DN: write (w) on the entry's `entry`, delete on the old parent's
  `children` and add on the new parent's (both on the same parent when
  the entry stays); add on the new RDN's attributes, and delete on the old
  RDN's when deleteOldRDN is set.
- Anything refused is insufficientAccessRights (50) naming what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping

from directory.acl.rights import WRITE, Rights
from directory.acl.view import CHILDREN, ENTRY, View
from directory.dsa import DSA
from directory.entry import Entry, resolve
from directory.predicates import entry_types
from directory.protocol.dn import DN
from directory.protocol.messages import Change, ModOp
from directory.protocol.results import LDAPError, ResultCode

EMPTY_DN = Entry(DN.ROOT, {})

NAMES: Mapping[Rights, str] = {
    Rights.SEARCH: "search", Rights.COMPARE: "compare", Rights.READ: "read",
    Rights.ADD: "add", Rights.DELETE: "delete", WRITE: "write",
}

CHANGE_NEEDS: Mapping[ModOp, Rights] = {
    ModOp.ADD: Rights.ADD,
    ModOp.DELETE: Rights.DELETE,
    ModOp.REPLACE: WRITE,
    ModOp.INCREMENT: WRITE,
}


def not_found(view: View, dn: DN) -> LDAPError:
    """noSuchObject for `dn`, naming its closest entry when disclosed."""
    parent = dn.parent
    while parent:
        found = view.get(parent)
        if found is not None:
            matched = str(parent) if view.allows(found, Rights.DISCLOSE) else ""
            return LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}", matched=matched)
        parent = parent.parent
    return LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}")


def disclosed(view: View, dn: DN) -> Entry:
    """The entry at `dn`, or noSuchObject when missing or not disclosed."""
    entry = view.get(dn)
    if entry is None or not view.allows(entry, Rights.DISCLOSE):
        raise not_found(view, dn)
    return entry


def require(view: View, entry: Entry, wanted: Rights, attribute: str = ENTRY) -> None:
    if wanted not in view.rights(entry, attribute):
        where = str(entry.dn) or "the empty DN"
        raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                        f"no {NAMES[wanted]} access to {attribute} of {where}")


def parent_of(dsa: DSA, view: View, dn: DN) -> Entry:
    """The parent entry: the empty DN's for the naming context's entry."""
    if dn == dsa.suffix:
        return EMPTY_DN
    return disclosed(view, dn.parent)


def search_base(view: View, entry: Entry) -> None:
    if Rights.SEARCH not in view.rights(entry, ENTRY):
        if not view.allows(entry, Rights.DISCLOSE):
            raise not_found(view, entry.dn)
        require(view, entry, Rights.SEARCH)


def add(dsa: DSA, view: View, entry: Entry) -> None:
    require(view, parent_of(dsa, view, entry.dn), Rights.ADD, CHILDREN)
    require(view, entry, Rights.ADD)
    for key in sorted(entry_types(entry)):
        if not dsa.schema.attribute(key).no_user_modification:
            require(view, entry, Rights.ADD, key)


def delete(dsa: DSA, view: View, entry: Entry) -> None:
    require(view, parent_of(dsa, view, entry.dn), Rights.DELETE, CHILDREN)
    require(view, entry, Rights.DELETE)


def modify(dsa: DSA, view: View, entry: Entry, changes: tuple[Change, ...]) -> None:
    for change in changes:
        key = resolve(dsa.schema, change.attribute).type.key
        wanted = (Rights.DELETE if change.op == ModOp.REPLACE and not change.values
                  else CHANGE_NEEDS[change.op])
        require(view, entry, wanted, key)


def rename(dsa: DSA, view: View, entry: Entry, new_rdn: DN, delete_old_rdn: bool,
           superior: DN | None) -> None:
    require(view, entry, WRITE)
    old_parent = parent_of(dsa, view, entry.dn)
    if superior is None or superior == old_parent.dn:
        require(view, old_parent, WRITE, CHILDREN)
    else:
        require(view, old_parent, Rights.DELETE, CHILDREN)
        require(view, disclosed(view, superior), Rights.ADD, CHILDREN)
    for rdn in new_rdn.rdns[:1]:
        for ava in rdn.avas:
            require(view, entry, Rights.ADD, ava.key)
    if delete_old_rdn:
        for ava in entry.dn.rdn.avas:
            require(view, entry, Rights.DELETE, ava.key)
