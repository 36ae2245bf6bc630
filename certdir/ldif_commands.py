"""`certdir ldif import` and `certdir ldif export` (RFC 2849).

- Import applies the whole file in one transaction: any bad record (LDIF
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
- Export writes every entry (or a subtree), parents before children, with
  user attributes; `--operational` adds the server's operational ones.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from certdir.config import Config
from certdir.service import open_directory
from directory.backend.sqlite import SQLiteTransaction
from directory.dsa import DSA
from directory.ldif import LDIFError, LDIFRecord, parse, write_entry
from directory.ops.add import build, collect, insert
from directory.ops.moddn import rename
from directory.ops.modify import apply_changes
from directory.protocol.dn import DN
from directory.protocol.messages import Change, ModOp, Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.selection import display_name


class ImportFailed(ValueError):
    """An import failed; nothing was written."""


MOD_OPS = {"add": ModOp.ADD, "delete": ModOp.DELETE, "replace": ModOp.REPLACE,
           "increment": ModOp.INCREMENT}


def _grouped(pairs: tuple[tuple[str, bytes], ...]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = {}
    for name, value in pairs:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def _apply(dsa: DSA, txn: SQLiteTransaction, record: LDIFRecord) -> None:
    dn = dsa.parse_dn(record.dn)
    kind = record.changetype or "add"
    if kind == "add":
        first_names: dict[str, str] = {}
        for name, _ in record.attributes:
            first_names.setdefault(name.lower(), name)
        grouped = _grouped(record.attributes)
        attributes = collect(dsa, ((first_names[k], v) for k, v in grouped.items()))
        insert(dsa, txn, build(dsa, dn, attributes, dsa.root_dn))
    elif kind == "delete":
        if txn.get(dn) is None:
            raise dsa.no_such_object(dn)
        if txn.has_children(dn):
            raise LDAPError(ResultCode.NOT_ALLOWED_ON_NON_LEAF, f"{dn} has subordinates")
        txn.delete(dn)
    elif kind == "modify":
        entry = txn.get(dn)
        if entry is None:
            raise dsa.no_such_object(dn)
        changes = tuple(Change(MOD_OPS[m.op], m.attribute, m.values)
                        for m in record.modifications)
        txn.replace(apply_changes(dsa, entry, changes, dsa.root_dn))
    else:
        assert record.newrdn is not None
        superior = None if record.newsuperior is None else dsa.parse_dn(record.newsuperior)
        rename(dsa, txn, dn, dsa.parse_dn(record.newrdn), record.deleteoldrdn, superior,
               dsa.root_dn)


def _count_records(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line[:3].lower() == b"dn:")


def import_ldif(config: Config, path: Path, quiet: bool = False) -> int:
    total = _count_records(path)
    dsa = open_directory(config)
    count = 0
    try:
        with path.open("rb") as source, _progress(quiet) as progress:
            task = progress.add_task("importing", total=total)
            with dsa.backend.transaction() as txn:
                for record in _records(source, path):
                    try:
                        _apply(dsa, txn, record)
                    except LDAPError as e:
                        raise ImportFailed(
                            f"{path}:{record.line}: {record.dn}: {e.message} "
                            f"({e.code.name.lower()}); nothing was imported") from None
                    count += 1
                    if count % 1000 == 0:
                        progress.update(task, completed=count)
            progress.update(task, completed=count)
    finally:
        dsa.backend.close()
    return count


def _records(source: BinaryIO, path: Path) -> Iterator[LDIFRecord]:
    try:
        yield from parse(source, base=path.parent)
    except LDIFError as e:
        raise ImportFailed(f"{path}: {e}; nothing was imported") from None


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=quiet, transient=False)


def export_ldif(config: Config, base: str | None, operational: bool,
                out: BinaryIO = sys.stdout.buffer) -> int:
    dsa = open_directory(config)
    schema = dsa.schema
    count = 0
    try:
        base_dn = dsa.parse_dn(base) if base else DN.ROOT
        for entry in dsa.backend.search(base_dn, Scope.SUB, None):
            pairs: list[tuple[str, bytes]] = []
            for key, values in entry.attributes.items():
                at = schema.attribute(key.split(";")[0])
                if at.operational and not operational:
                    continue
                name = display_name(schema, key)
                pairs.extend((name, v) for v in values)
            out.write(write_entry(str(entry.dn), pairs))
            count += 1
    finally:
        dsa.backend.close()
    out.flush()
    return count

