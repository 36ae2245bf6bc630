"""DirectoryWriter: how the CA and the KMS change the directory (DESIGN.md).

- It works inside a backend transaction the caller holds, so the caller's
  own records (certificates issued, CRL numbers, escrowed keys), kept in
  tables of the same database, commit with the entries or not at all.
- Every change goes through the same checks and stamps as an LDAP
  operation: schema (RFC 4512), NO-USER-MODIFICATION, operational
  attributes, with `actor` as creatorsName/modifiersName.
- Adding a value an entry already has, or deleting one it lacks, is not an
  error here: publishing is idempotent.
- `ensure` creates an entry that is missing (its parent must exist) with
  the given attributes; an existing one is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from directory.backend import Records, Transaction
from directory.dsa import DSA
from directory.entry import Entry, resolve
from directory.ops.add import build, collect, insert
from directory.ops.modify import apply_changes
from directory.protocol.dn import DN
from directory.protocol.messages import Change, ModOp


class DirectoryWriter:
    def __init__(self, dsa: DSA, txn: Transaction, actor: DN) -> None:
        self.dsa = dsa
        self.txn = txn
        self.actor = actor

    @property
    def records(self) -> Records:
        """The caller's own tables, in this transaction."""
        return self.txn.records

    def dn(self, text: str) -> DN:
        return self.dsa.parse_dn(text)

    def require(self, dn: DN) -> Entry:
        entry = self.txn.get(dn)
        if entry is None:
            raise self.dsa.no_such_object(dn)
        return entry

    def ensure(self, dn: DN, attributes: Mapping[str, Iterable[bytes]]) -> None:
        if self.txn.get(dn) is not None:
            return
        pairs = [(name, tuple(values)) for name, values in attributes.items()]
        insert(self.dsa, self.txn, build(self.dsa, dn, collect(self.dsa, pairs), self.actor))

    def add_values(self, dn: DN, values: Mapping[str, Iterable[bytes]]) -> None:
        entry = self.require(dn)
        changes = []
        for name, wanted in values.items():
            have = set(self._values(entry, name))
            new = tuple(v for v in wanted if v not in have)
            if new:
                changes.append(Change(ModOp.ADD, name, new))
        self._change(entry, changes)

    def delete_values(self, dn: DN, values: Mapping[str, Iterable[bytes]]) -> None:
        entry = self.txn.get(dn)
        if entry is None:
            return
        changes = []
        for name, unwanted in values.items():
            have = set(self._values(entry, name))
            gone = tuple(v for v in unwanted if v in have)
            if gone:
                changes.append(Change(ModOp.DELETE, name, gone))
        self._change(entry, changes)

    def replace_values(self, dn: DN, values: Mapping[str, Iterable[bytes]]) -> None:
        entry = self.require(dn)
        changes = [Change(ModOp.REPLACE, name, tuple(v)) for name, v in values.items()]
        self._change(entry, [c for c in changes
                             if c.values != self._values(entry, c.attribute)])

    def _values(self, entry: Entry, name: str) -> tuple[bytes, ...]:
        return entry.get(resolve(self.dsa.schema, name).key)

    def _change(self, entry: Entry, changes: list[Change]) -> None:
        if changes:
            self.txn.replace(apply_changes(self.dsa, entry, tuple(changes), self.actor))
