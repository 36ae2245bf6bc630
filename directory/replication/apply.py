"""Applying what a provider sent (RFC 4533 §3.4), one writer transaction per batch.

- An entry sent in full (state add or modify, or any entry of a refresh)
  replaces the whole entry here, found by its entryUUID: its attributes are
  the provider's, operational ones included (entryUUID, entryCSN,
  creatorsName, modifiersName and the timestamps stay as the provider set
  them; the entryUUID is the Sync State's when the configured attributes
  leave it out). Types the schema does not know and the ones computed when read
  (hasSubordinates, subschemaSubentry, entryDN) are left out; the object
  classes get their superclasses, so the objectClass index finds them.
- A known entryUUID under another DN is a rename: the entry moves with
  everything below it. An unknown entryUUID whose DN exists here takes that
  entry over.
- A delete names entryUUIDs (a Sync State of delete, a syncIdSet with
  refreshDeletes): each entry goes with anything below it; an entryUUID
  not replicated here, or whose DN now holds another entry (the provider
  deleted it and added another under its DN), deletes nothing.
- At the end of a present phase every replicated entry whose entryUUID was
  not named present is deleted, the deepest first (RFC 4533 §3.3.1).
- A checkpoint stores the provider's cookie in the same transaction as the
  changes it covers: a restart resumes from the last batch committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from directory.backend import Transaction
from directory.dsa import DSA
from directory.entry import Entry, find
from directory.operational import COMPUTED
from directory.ops.add import complete_classes
from directory.protocol.dn import DN
from directory.replication import store

# Computed when read on every server that has them: never stored.
NOT_STORED = frozenset((*COMPUTED, "entrydn"))


@dataclass(frozen=True, slots=True)
class Upsert:
    uuid: str
    entry: Entry


@dataclass(frozen=True, slots=True)
class Remove:
    uuids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveAbsent:
    present: frozenset[str]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    cookie: bytes


Change: TypeAlias = Upsert | Remove | RemoveAbsent | Checkpoint


def entry_of(dsa: DSA, dn: DN, pairs: Iterable[tuple[str, Iterable[bytes]]],
             uuid: str) -> Entry:
    """The entry to store for the provider's DN and attributes; its
    entryUUID is the Sync State's when the attributes asked for leave it out."""
    attributes: dict[str, tuple[bytes, ...]] = {}
    for name, values in pairs:
        resolved = find(dsa.schema, name)
        if resolved is None or resolved.type.key in NOT_STORED:
            continue
        attributes[resolved.key] = attributes.get(resolved.key, ()) + tuple(values)
    attributes.setdefault("entryuuid", (uuid.encode(),))
    complete_classes(dsa, attributes)
    return Entry(dn, attributes)


def _uuid_of(entry: Entry) -> str | None:
    value = entry.first("entryuuid")
    return None if value is None else value.decode().lower()


@dataclass
class _Batch:
    dsa: DSA
    rid: int
    txn: Transaction
    written: int = 0
    deleted: int = 0

    def holding(self, uuid: str) -> Entry | None:
        """The entry here that `uuid` names, if it is still that entry (a DN
        the provider gave a new entry since names another one)."""
        known = store.dn_of(self.txn.records, self.rid, uuid)
        if known is None:
            return None
        entry = self.txn.get(self.dsa.parse_dn(known))
        return entry if entry is not None and _uuid_of(entry) == uuid else None

    def remember_subtree(self, dn: DN) -> None:
        for entry in self.txn.subtree(dn):
            uuid = _uuid_of(entry)
            if uuid is not None:
                store.remember(self.txn.records, self.rid, uuid, str(entry.dn))

    def delete_subtree(self, dn: DN) -> None:
        for entry in reversed(list(self.txn.subtree(dn))):
            self.txn.delete(entry.dn)
            self.deleted += 1
            uuid = _uuid_of(entry)
            if uuid is not None:
                store.forget(self.txn.records, self.rid, uuid)


def _upsert(batch: _Batch, change: Upsert) -> None:
    txn, entry = batch.txn, change.entry
    old = batch.holding(change.uuid)
    if old is not None and old.dn != entry.dn:
        txn.rename(old.dn, entry)
        batch.remember_subtree(entry.dn)
    elif txn.get(entry.dn) is not None:
        txn.replace(entry)
    else:
        txn.add(entry, root=entry.dn == batch.dsa.suffix)
    store.remember(txn.records, batch.rid, change.uuid, str(entry.dn))
    batch.written += 1


def _remove(batch: _Batch, change: Remove) -> None:
    for uuid in change.uuids:
        entry = batch.holding(uuid)
        if entry is not None:
            batch.delete_subtree(entry.dn)
        store.forget(batch.txn.records, batch.rid, uuid)


def _remove_absent(batch: _Batch, change: RemoveAbsent) -> None:
    absent = [(batch.dsa.parse_dn(dn), uuid)
              for uuid, dn in store.replicated(batch.txn.records, batch.rid)
              if uuid not in change.present]
    for _, uuid in sorted(absent, key=lambda pair: -len(pair[0])):
        entry = batch.holding(uuid)
        if entry is not None:
            batch.delete_subtree(entry.dn)
        store.forget(batch.txn.records, batch.rid, uuid)


def _checkpoint(batch: _Batch, change: Checkpoint) -> None:
    store.save_cookie(batch.txn.records, batch.rid, change.cookie)


APPLY: Mapping[type, Callable[[_Batch, Any], None]] = {
    Upsert: _upsert,
    Remove: _remove,
    RemoveAbsent: _remove_absent,
    Checkpoint: _checkpoint,
}


def apply(dsa: DSA, rid: int, txn: Transaction, changes: Iterable[Change]) -> tuple[int, int]:
    """Apply `changes` in order; (entries written, entries deleted)."""
    batch = _Batch(dsa, rid, txn)
    for change in changes:
        APPLY[type(change)](batch, change)
    return batch.written, batch.deleted
