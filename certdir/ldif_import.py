"""`certdir ldif import` (RFC 2849), like slapadd: bulk, checked, all or nothing.

- The whole file is applied in one transaction: any bad record (LDIF
  syntax, schema violation, missing parent, duplicate) stops it, names
  the file, the line and the reason, and leaves the database as it was.
- Content records and `changetype: add` add entries; `delete`, `modify`
  and `modrdn`/`moddn` change records are applied as the LDAP operations
  would be, with the same checks.
- Records are schema-checked exactly as an LDAP Add is; the importer
  acts as the root DN for creatorsName/modifiersName.
- Import runs against the database directly, like slapadd: stop the
  server first, or until it restarts it may serve cached copies of
  changed entries, and miss new ones in substring searches on a gram the
  import left out (directory/backend/index_stats.py).

Checking and encoding an entry costs several times what storing it does,
and one Python process runs on one core, so `jobs` worker processes
(default: one per core) prepare pieces of the file while this process
stores them in file order:

- The file is cut at blank lines, which always end a record (RFC 2849),
  so every piece holds whole records and keeps the file's line numbers.
- Workers do what needs no database and no order: LDIF and DN parsing
  (the parents of their entries kept, so each entry's DN is parsed from
  its own RDN up to a known parent), the Add checks, the entryUUIDs
  (random) and the index rows of the client's attributes, grouped by row
  (`directory.backend.postings`).
- A worker sends each run of add records back as one `Batch`: marshal's
  form of plain tuples and their postings. Pickled objects, a record and
  a set of rows each, cost this process a third of its time to load.
- This process does what needs order or the database: operational
  attributes (one CSN generator, so entryCSNs increase in file order) and
  their index rows, the entry rows with the parent and duplicate checks
  (`Transaction.insert_many`; a refused entry is named by its record's
  line), and the change records, between batches. The backend writes the
  postings in key order as they grow, not row by row.
- The grams the load leaves out are told to the workers as the backend
  finds them (`certdir.left_out_keys`): a third of the places a worker
  gathers from an address book are theirs, and would be dropped here.
- Without a progress bar (`--quiet`) the records are not counted first:
  that read the whole file once more.
- Workers die with this process (Linux's parent-death signal): an import
  killed midway leaves no worker behind.
- The garbage collector is settled first (`certdir.collector`), in this
  process and so in the workers forked from it: the buffered index rows
  and pieces in flight made CPython's default full collections take a
  sixth of the import's CPU.
"""

from __future__ import annotations

import ctypes
import marshal
import mmap
import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator
from io import BytesIO
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import NamedTuple

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from certdir import collector
from certdir.config import Config
from certdir.directory_open import offline_directory
from certdir.failures import CommandFailed
from certdir.left_out_keys import LeftOutKeys
from directory.backend import EntryRefused, NewEntry, Transaction
from directory.backend.index_keys import substring_name
from directory.backend.paths import path_of
from directory.backend.postings import Gathering, Postings, merge
from directory.dsa import DSA
from directory.entry import StoredLeaf, pack, stored_leaf
from directory.ldif import LDIFError, LDIFRecord, parse
from directory.operational import NEW_ENTRY, new_uuid, stamp_new
from directory.ops.add import Attributes, check_within, collect, validate
from directory.ops.moddn import rename
from directory.ops.modify import apply_changes
from directory.protocol.dn import DN
from directory.protocol.messages import Change, ModOp
from directory.protocol.results import LDAPError, ResultCode
from directory.replication import deletes

PIECE_BYTES = 1 << 20
# prctl(2): the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1

MOD_OPS = {"add": ModOp.ADD, "delete": ModOp.DELETE, "replace": ModOp.REPLACE,
           "increment": ModOp.INCREMENT}


class ImportFailed(CommandFailed):
    """An import failed; nothing was written."""


# An add record checked by a worker, ready to be stamped and stored: line,
# DN, path, parent's path, leaf RDN, attributes, structural class, entryUUID.
Add = tuple[int, str, bytes, bytes | None, StoredLeaf, Attributes, str, bytes]


class Batch(NamedTuple):
    """Add records in a row, checked by a worker: a list of `Add` and the
    postings of their index rows, in marshal's form (one bytes object to
    send back, which this process loads in C)."""
    data: bytes


class Failure(NamedTuple):
    """Why a piece stopped: the message names the line."""
    message: str


Prepared = Batch | LDIFRecord | Failure
Piece = tuple[int, bytes]  # first line number, whole records


def import_ldif(config: Config, path: Path, quiet: bool = False, jobs: int = 0) -> int:
    # Counted for the progress bar only: reading the file twice costs time.
    total = None if quiet else _count_records(path)
    count = 0
    collector.settle()
    context = multiprocessing.get_context("fork")
    left_out = LeftOutKeys(context)
    with offline_directory(config) as dsa, _progress(quiet) as progress, \
            dsa.backend.transaction(bulk=True) as txn:
        task = progress.add_task("importing", total=total)
        for prepared in _prepare_all(dsa, path, jobs or os.cpu_count() or 1, context, left_out):
            for item in prepared:
                if isinstance(item, Failure):
                    raise ImportFailed(f"{path}:{item.message}; nothing was imported")
                if isinstance(item, Batch):
                    count += _store(dsa, txn, path, item)
                else:
                    _change(dsa, txn, path, item)
                    count += 1
            left_out.publish(txn.left_out())
            progress.update(task, completed=count)
        dsa.stamped(txn)
    return count


def _store(dsa: DSA, txn: Transaction, path: Path, batch: Batch) -> int:
    """Stamp and store a batch of adds; how many it held."""
    adds: list[Add]
    postings: Postings
    adds, postings = marshal.loads(batch.data)
    entries = []
    stamped = Gathering()
    indexed = dsa.backend.indexed
    stamps = [key for key in NEW_ENTRY if key in indexed or substring_name(key) in indexed]
    for place, (_, dn, entry_path, parent, leaf, attributes, structural, entry_uuid) \
            in enumerate(adds):
        stamp_new(dsa, attributes, dsa.root_dn, structural, entry_uuid)
        entries.append(NewEntry(dn, entry_path, parent, pack(leaf, attributes)))
        dsa.backend.gather({key: attributes[key] for key in stamps}, place, stamped)
    merge(postings, stamped.postings())
    try:
        txn.insert_many(entries, postings)
    except EntryRefused as e:
        line, dn = adds[e.place][:2]
        raise ImportFailed(f"{path}:{_why(line, dn, e.error)}; nothing was imported") from None
    return len(adds)


def _change(dsa: DSA, txn: Transaction, path: Path, record: LDIFRecord) -> None:
    try:
        _apply(dsa, txn, record)
    except LDAPError as e:
        raise ImportFailed(f"{path}:{_why(record.line, record.dn, e)}; nothing was imported") \
            from None


def _why(line: int, dn: str, e: LDAPError) -> str:
    return f"{line}: {dn}: {e.message} ({e.code.name.lower()})"


# --- preparation, in worker processes ------------------------------------------

def _prepare_all(dsa: DSA, path: Path, jobs: int, context: BaseContext,
                 left_out: LeftOutKeys) -> Iterator[list[Prepared]]:
    """Each piece of the file prepared, in file order."""
    if path.stat().st_size == 0:
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pieces = _pieces(data)
        if jobs == 1:
            yield from (_prepare(dsa, path.parent, left_out, piece) for piece in pieces)
            return
        # Forked before the progress bar's thread starts, the workers
        # inherit the schema instead of loading it again.
        with context.Pool(jobs, _start_worker,
                          (dsa, path.parent, left_out, os.getpid())) as pool:
            yield from pool.imap(_prepare_in_worker, pieces)


def _pieces(data: mmap.mmap) -> Iterator[Piece]:
    start, line = 0, 1
    while start < len(data):
        end = _record_boundary(data, start + PIECE_BYTES)
        piece = data[start:end]
        yield line, piece
        line += piece.count(b"\n")
        start = end


def _record_boundary(data: mmap.mmap, at: int) -> int:
    """Where the first blank line at or after `at` starts (or the end). The
    CRLF form is looked for only before the first LF one: a file without
    CRLFs is not searched to its end for each piece."""
    lf = data.find(b"\n\n", at)
    crlf = data.find(b"\n\r\n", at, len(data) if lf < 0 else lf + 2)
    ends = [i + 1 for i in (lf, crlf) if i >= 0]
    return min(ends, default=len(data))


# What a worker process prepares with, set once as it starts (a Pool calls
# module-level functions only).
_worker_state: list[tuple[DSA, Path, LeftOutKeys]] = []


def _start_worker(dsa: DSA, base: Path, left_out: LeftOutKeys, parent: int) -> None:
    # Killed with the import (kill -9 of it): a worker left running would
    # print a traceback when it next sends, to a pipe nobody reads.
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the import died before the line above
        os._exit(1)
    _worker_state.append((dsa, base, left_out))


def _prepare_in_worker(piece: Piece) -> list[Prepared]:
    return _prepare(*_worker_state[0], piece)


def _prepare(dsa: DSA, base: Path, left_out: LeftOutKeys, piece: Piece) -> list[Prepared]:
    first_line, data = piece
    prepared: list[Prepared] = []
    adds: list[Add] = []
    keys_left_out = left_out.read()
    gathering = Gathering(keys_left_out)

    def batch() -> None:
        nonlocal adds, gathering
        if adds:
            prepared.append(Batch(marshal.dumps((adds, gathering.postings()))))
            adds, gathering = [], Gathering(keys_left_out)

    try:
        for record in parse(BytesIO(data), base=base, first_line=first_line):
            if _is_add(record):
                add = _prepare_add(dsa, record)
                dsa.backend.gather(add[5], len(adds), gathering)
                adds.append(add)
            else:
                batch()
                prepared.append(record)
    except LDIFError as e:
        batch()
        prepared.append(Failure(f"{e.line}: {e.message}"))
    except _RecordFailed as e:
        batch()
        prepared.append(Failure(e.message))
    batch()
    return prepared


class _RecordFailed(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _is_add(record: LDIFRecord) -> bool:
    return record.changetype in (None, "add")


def _prepare_add(dsa: DSA, record: LDIFRecord) -> Add:
    try:
        dn = dsa.parse_dn(record.dn)
        check_within(dsa, dn)
        attributes = collect(dsa, _grouped(record.attributes))
        structural = validate(dsa, dn, attributes)
    except LDAPError as e:
        raise _RecordFailed(_why(record.line, record.dn, e)) from None
    parent = None
    if dn != dsa.suffix:
        # Kept, the parent's DN is not parsed again for its other children.
        parent = path_of(DN.shared(str(dn.parent), dsa.schema))
    return (record.line, str(dn), path_of(dn), parent, stored_leaf(dn), attributes, structural,
            new_uuid())


def _grouped(pairs: Iterable[tuple[str, bytes]]) -> list[tuple[str, list[bytes]]]:
    """Values grouped by attribute, each under the name first written."""
    grouped: dict[str, tuple[str, list[bytes]]] = {}
    for name, value in pairs:
        grouped.setdefault(name.lower(), (name, []))[1].append(value)
    return list(grouped.values())


# --- change records, in this process ---------------------------------------------

def _apply(dsa: DSA, txn: Transaction, record: LDIFRecord) -> None:
    dn = dsa.parse_dn(record.dn)
    if record.changetype == "delete":
        gone = txn.get(dn)
        if gone is None:
            raise dsa.no_such_object(dn)
        if txn.has_children(dn):
            raise LDAPError(ResultCode.NOT_ALLOWED_ON_NON_LEAF, f"{dn} has subordinates")
        txn.delete(dn)
        deletes.record(txn.records, dsa.csn.next(dsa.now()), [gone], dsa.config.delete_log)
    elif record.changetype == "modify":
        entry = txn.get(dn)
        if entry is None:
            raise dsa.no_such_object(dn)
        changes = tuple(Change(MOD_OPS[m.op], m.attribute, m.values)
                        for m in record.modifications)
        txn.replace(apply_changes(dsa, entry, changes, dsa.root_dn))
    else:
        superior = None if record.newsuperior is None else dsa.parse_dn(record.newsuperior)
        assert record.newrdn is not None
        rename(dsa, txn, dn, dsa.parse_dn(record.newrdn), record.deleteoldrdn, superior,
               dsa.root_dn)


def _count_records(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line[:3].lower() == b"dn:")


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=quiet, transient=False)
