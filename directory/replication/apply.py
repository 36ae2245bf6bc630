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
  entry over. An entryUUID is known when it was replicated from this
  provider, or, where entryUUID is indexed (a multi-provider node), when
  any entry here has it: the peer names the entries made here by theirs.
- On a multi-provider node the newer change wins, entry by entry, as
  OpenLDAP's syncrepl decides (dn_callback): an entry sent whose entryCSN
  is not newer than the one of the entry here it would replace (by
  entryUUID, else by DN) is skipped. That resolves conflicting writes on
  two providers by CSN (ties cannot happen: the server ids differ) and
  stops a change coming back from the peer it went to, which sends it with
  the same entryCSN. An entry sent with this node's own server id and a
  CSN newer than any it issued (`SameServerId`) means the peer has the
  same `replication.server_id`: the batch is refused, the connection
  dropped and retried, with a message saying so, until the ids differ.
  A read-only replica takes whatever its provider
  sends: the provider's entries replace the ones `certdir init` made here,
  newer as they are.
- A delete names entryUUIDs (a Sync State of delete, a syncIdSet with
  refreshDeletes): each entry goes with anything below it, whatever its
  entryCSN, as slapd's syncrepl applies a delete (be_delete, no CSN
  compared): a delete wins over a modify made here after it. An entryUUID
  not known here, or whose DN now holds another entry (the provider deleted
  it and added another under its DN), deletes nothing.
- At the end of a present phase every replicated entry whose entryUUID was
  not named present is deleted, the deepest first (RFC 4533 §3.3.1).
- Every entry deleted here goes to the delete log (`deletes`) as a delete
  made here does, with a CSN of this node, so this node's own provider
  tells its consumers (the peer, replicas of it) of it. The origin's CSN
  is not in what syncrepl sends (a syncIdSet names entryUUIDs only) and a
  consumer here may have been told of newer CSNs of that server already:
  a fresh CSN is newer than anything this node sent.
- The newest entryCSN written, per server id, goes to contextCSN
  (`context`): it carries one CSN per server id, the peer's too.
- A checkpoint stores the provider's cookie in the same transaction as the
  changes it covers: a restart resumes from the last batch committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from directory.backend import Transaction
from directory.dsa import DSA
from directory.entry import Entry, find
from directory.operational import COMPUTED
from directory.ops.add import complete_classes
from directory.protocol.dn import DN
from directory.protocol.sync import csn_sid
from directory.replication import context, deletes, store

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


def _csn_of(entry: Entry) -> str:
    value = entry.first("entrycsn")
    return "" if value is None else value.decode()


class SameServerId(Exception):
    """The peer stamps its changes with this node's server id."""


@dataclass
class _Batch:
    dsa: DSA
    rid: int
    txn: Transaction
    newer_wins: bool
    written: int = 0
    deleted: int = 0
    # The newest entryCSN written, per server id.
    newest: dict[int, str] = field(default_factory=dict)

    def holding(self, uuid: str) -> Entry | None:
        """The entry here that `uuid` names, if it is still that entry (a DN
        the provider gave a new entry since names another one)."""
        known = store.dn_of(self.txn.records, self.rid, uuid)
        entry = (self.txn.get(self.dsa.parse_dn(known)) if known is not None
                 else self._indexed(uuid))
        return entry if entry is not None and _uuid_of(entry) == uuid else None

    def _indexed(self, uuid: str) -> Entry | None:
        backend = self.dsa.backend
        if "entryuuid" not in backend.indexed:
            return None
        rows = backend.index_rows({"entryuuid": (uuid.encode(),)})
        return next((found for attribute, key in rows
                     if (found := self.txn.find(attribute, key)) is not None), None)

    def wrote(self, csn: str) -> None:
        if csn:
            sid = csn_sid(csn)
            self.newest[sid] = max(csn, self.newest.get(sid, ""))

    def remember_subtree(self, dn: DN) -> None:
        for entry in self.txn.subtree(dn):
            uuid = _uuid_of(entry)
            if uuid is not None:
                store.remember(self.txn.records, self.rid, uuid, str(entry.dn))

    def delete_subtree(self, dn: DN) -> None:
        doomed = list(reversed(list(self.txn.subtree(dn))))
        for entry in doomed:
            self.txn.delete(entry.dn)
            self.deleted += 1
            uuid = _uuid_of(entry)
            if uuid is not None:
                store.forget(self.txn.records, self.rid, uuid)
        deletes.record(self.txn.records, self.dsa.csn.next(self.dsa.now()), doomed)


def _upsert(batch: _Batch, change: Upsert) -> None:
    txn, entry = batch.txn, change.entry
    old = batch.holding(change.uuid)
    here = old if old is not None else txn.get(entry.dn)
    csn = _csn_of(entry)
    if batch.newer_wins:
        _not_ours(batch, csn)
        if here is not None and csn and _csn_of(here) >= csn:
            if _uuid_of(here) == change.uuid:
                store.remember(txn.records, batch.rid, change.uuid, str(here.dn))
            return
    if old is not None and old.dn != entry.dn:
        txn.rename(old.dn, entry)
        batch.remember_subtree(entry.dn)
    elif txn.get(entry.dn) is not None:
        txn.replace(entry)
    else:
        txn.add(entry, root=entry.dn == batch.dsa.suffix)
    store.remember(txn.records, batch.rid, change.uuid, str(entry.dn))
    batch.written += 1
    batch.wrote(csn)


def _not_ours(batch: _Batch, csn: str) -> None:
    own = batch.dsa.csn.server_id
    if csn and csn_sid(csn) == own and csn > context.newest(batch.txn.records, own):
        raise SameServerId(f"an entry stamped with this node's server id {own} and a CSN it "
                           "never issued: the peer has the same replication.server_id")


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
    consumer = dsa.config.consumer
    batch = _Batch(dsa, rid, txn, consumer is not None and consumer.multi_provider)
    for change in changes:
        APPLY[type(change)](batch, change)
    for csn in batch.newest.values():
        context.record(txn.records, csn)
    return batch.written, batch.deleted
