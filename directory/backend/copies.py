"""Consistent copies of a whole database, for `certdir ca backup` / `restore`.

- `dump(url, target)` writes a copy of the database at `url` as of one
  commit, without stopping writers, and yields the `Records` of that same
  commit (a summary read from them describes what was copied).
- `load(url, copy)` puts a copy into the database at `url`, which must be
  empty, all or nothing, and yields the `Records` of the result.
- SQLite: the copy is a database file made with the online backup API (one
  step, under one read transaction; in WAL mode writers go on). It lies in
  the data directory where `storage.path` points, so loading it is opening it.
- PostgreSQL: `pg_dump --format=custom` under a snapshot exported from a
  REPEATABLE READ transaction (the summary reads the same snapshot), loaded
  with `pg_restore --single-transaction --exit-on-error`: Debian's client
  tools handle every table, sequence and index without certdir knowing
  them, and a restore that fails half way leaves the database empty.
- Each scheme names, in `member`, what the copy is called in an archive:
  SQLite's keeps the database file's place in the data directory (so
  archives of version 1 restore as before), a database server's is
  `DUMP_MEMBER`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from directory.backend import Records
from directory.backend.sqlite import SQLiteRecords

DUMP_MEMBER = "certdir.pgdump"


class CopyError(Exception):
    """A copy could not be made or loaded; the message says why."""


@dataclass(frozen=True, slots=True)
class Copier:
    member: Callable[[str, Path], str]
    dump: Callable[[str, Path], AbstractContextManager[Records]]
    load: Callable[[str, Path], AbstractContextManager[Records]]


def sqlite_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _sqlite_member(url: str, data_dir: Path) -> str:
    database = sqlite_path(url)
    try:
        return database.resolve().relative_to(data_dir.resolve()).as_posix()
    except ValueError:
        raise CopyError(f"the database {database} lies outside the data directory "
                        f"{data_dir}; a restore could not put it back where certdir.yaml "
                        "points") from None


@contextmanager
def _sqlite_dump(url: str, target: Path) -> Iterator[Records]:
    database = sqlite_path(url)
    if not database.is_file():
        raise CopyError(f"{database}: no database here to back up")
    source = sqlite3.connect(database)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        os.chmod(target, stat.S_IMODE(database.stat().st_mode))
        yield SQLiteRecords(copy)
    finally:
        copy.close()
        source.close()


@contextmanager
def _sqlite_load(url: str, copy: Path) -> Iterator[Records]:
    if copy.resolve() != sqlite_path(url).resolve():
        raise CopyError(f"the archive's database {copy} is not where certdir.yaml points "
                        f"({sqlite_path(url)})")
    conn = sqlite3.connect(copy)
    try:
        yield SQLiteRecords(conn)
    finally:
        conn.close()


def _client(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CopyError(f"{name} is not installed (Debian: postgresql-client)")
    return found


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CopyError(f"{what} failed: {done.stderr.strip() or done.stdout.strip()}")


def _postgresql_member(url: str, data_dir: Path) -> str:
    return DUMP_MEMBER


@contextmanager
def _postgresql_dump(url: str, target: Path) -> Iterator[Records]:
    import psycopg

    from directory.backend.pg_records import PostgresRecords

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        _run([_client("pg_dump"), "--format=custom", f"--snapshot={row[0]}",
              "--no-owner", "--no-privileges", f"--file={target}", f"--dbname={url}"],
             "pg_dump")
        os.chmod(target, 0o600)
        yield PostgresRecords(conn)
        conn.execute("ROLLBACK")


@contextmanager
def _postgresql_load(url: str, copy: Path) -> Iterator[Records]:
    import psycopg

    from directory.backend.pg_records import PostgresRecords

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                           " ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
                           ).fetchone()
        if row is not None and row[0]:
            raise CopyError(f"{_safe(url)} is not empty; restore only into an empty database")
        _run([_client("pg_restore"), "--single-transaction", "--exit-on-error",
              "--no-owner", "--no-privileges", f"--dbname={url}", str(copy)], "pg_restore")
        copy.unlink()
        yield PostgresRecords(conn)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


COPIERS: Mapping[str, Copier] = {
    "sqlite": Copier(_sqlite_member, _sqlite_dump, _sqlite_load),
    "postgresql": Copier(_postgresql_member, _postgresql_dump, _postgresql_load),
}


def copier(url: str) -> Copier:
    scheme = urlsplit(url).scheme
    found = COPIERS.get(scheme)
    if found is None:
        raise CopyError(f"{_safe(url)}: no backup for storage scheme {scheme!r} "
                        f"(one of {', '.join(sorted(COPIERS))})")
    return found
