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
  server first, or it may serve cached copies of changed entries until it
  restarts.

Checking and encoding an entry costs several times what storing it does,
and one Python process runs on one core, so `jobs` worker processes
(default: one per core) prepare pieces of the file while this process
stores them in file order:

- The file is cut at blank lines, which always end a record (RFC 2849),
  so every piece holds whole records and keeps the file's line numbers.
- Workers do what needs no database: LDIF and DN parsing, the Add checks
  and the index keys of the client's attributes.
- This process does what needs order or the database: operational
  attributes (one CSN generator, so entryCSNs increase in file order),
  parent and duplicate checks, the rows, and the change records.
- The garbage collector is settled first (`certdir.collector`), in this
  process and so in the workers forked from it: the buffered index rows
  and pieces in flight made CPython's default full collections take a
  sixth of the import's CPU.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from certdir import collector
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.backend import Transaction
from directory.backend.paths import path_of
from directory.dsa import DSA
from directory.entry import StoredLeaf, pack, stored_leaf
from directory.ldif import LDIFError, LDIFRecord, parse
from directory.operational import NEW_ENTRY, stamp_new
from directory.ops.add import Attributes, check_within, collect, validate
from directory.ops.moddn import rename
from directory.ops.modify import apply_changes
from directory.protocol.messages import Change, ModOp
from directory.protocol.results import LDAPError, ResultCode
from directory.replication import deletes

PIECE_BYTES = 1 << 20

MOD_OPS = {"add": ModOp.ADD, "delete": ModOp.DELETE, "replace": ModOp.REPLACE,
           "increment": ModOp.INCREMENT}


class ImportFailed(ValueError):
    """An import failed; nothing was written."""


class PreparedAdd(NamedTuple):
    """An add record checked by a worker, ready to be stamped and stored."""
    line: int
    dn: str
    path: bytes
    parent: bytes | None
    leaf: StoredLeaf
    attributes: Attributes
    structural: str
    index_rows: set[tuple[str, bytes]]


class Failure(NamedTuple):
    """Why a piece stopped: the message names the line."""
    message: str


Prepared = PreparedAdd | LDIFRecord | Failure
Piece = tuple[int, bytes]  # first line number, whole records


def import_ldif(config: Config, path: Path, quiet: bool = False, jobs: int = 0) -> int:
    total = _count_records(path)
    count = 0
    collector.settle()
    with offline_directory(config) as dsa, _progress(quiet) as progress, \
            dsa.backend.transaction() as txn:
        task = progress.add_task("importing", total=total)
        for prepared in _prepare_all(dsa, path, jobs or os.cpu_count() or 1):
            for item in prepared:
                _store(dsa, txn, path, item)
                count += 1
            progress.update(task, completed=count)
        dsa.stamped(txn)
    return count


def _store(dsa: DSA, txn: Transaction, path: Path, item: Prepared) -> None:
    if isinstance(item, Failure):
        raise ImportFailed(f"{path}:{item.message}; nothing was imported")
    try:
        if isinstance(item, PreparedAdd):
            attributes = item.attributes
            stamp_new(dsa, attributes, dsa.root_dn, item.structural)
            rows = item.index_rows | dsa.backend.index_rows(
                {key: attributes[key] for key in NEW_ENTRY})
            txn.insert(item.dn, item.path, item.parent, pack(item.leaf, attributes), rows)
        else:
            _apply(dsa, txn, item)
    except LDAPError as e:
        raise ImportFailed(f"{path}:{_why(item.line, item.dn, e)}; nothing was imported") \
            from None


def _why(line: int, dn: str, e: LDAPError) -> str:
    return f"{line}: {dn}: {e.message} ({e.code.name.lower()})"


# --- preparation, in worker processes ------------------------------------------

def _prepare_all(dsa: DSA, path: Path, jobs: int) -> Iterator[list[Prepared]]:
    """Each piece of the file prepared, in file order."""
    if path.stat().st_size == 0:
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pieces = _pieces(data)
        if jobs == 1:
            yield from (_prepare(dsa, path.parent, piece) for piece in pieces)
            return
        # Forked before the progress bar's thread starts, the workers
        # inherit the schema instead of loading it again.
        with multiprocessing.get_context("fork").Pool(
                jobs, _start_worker, (dsa, path.parent)) as pool:
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
_worker_state: list[tuple[DSA, Path]] = []


def _start_worker(dsa: DSA, base: Path) -> None:
    _worker_state.append((dsa, base))


def _prepare_in_worker(piece: Piece) -> list[Prepared]:
    return _prepare(*_worker_state[0], piece)


def _prepare(dsa: DSA, base: Path, piece: Piece) -> list[Prepared]:
    first_line, data = piece
    prepared: list[Prepared] = []
    try:
        for record in parse(BytesIO(data), base=base, first_line=first_line):
            prepared.append(_prepare_add(dsa, record) if _is_add(record) else record)
    except LDIFError as e:
        prepared.append(Failure(f"{e.line}: {e.message}"))
    except _RecordFailed as e:
        prepared.append(Failure(e.message))
    return prepared


class _RecordFailed(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _is_add(record: LDIFRecord) -> bool:
    return record.changetype in (None, "add")


def _prepare_add(dsa: DSA, record: LDIFRecord) -> PreparedAdd:
    try:
        dn = dsa.parse_dn(record.dn)
        check_within(dsa, dn)
        attributes = collect(dsa, _grouped(record.attributes))
        structural = validate(dsa, dn, attributes)
    except LDAPError as e:
        raise _RecordFailed(_why(record.line, record.dn, e)) from None
    return PreparedAdd(record.line, str(dn), path_of(dn),
                       None if dn == dsa.suffix else path_of(dn.parent), stored_leaf(dn),
                       attributes, structural, dsa.backend.index_rows(attributes))


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
