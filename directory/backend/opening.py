"""Opening storage by URL: the scheme names the backend.

- `sqlite:///absolute/path.db` is the embedded default (`storage.path`;
  the path percent-encoded, as in any URL).
- `postgresql://user@host:port/database` (any libpq URL) is a database
  several front ends share (`storage.url`).
- Each scheme maps to one opener in `OPENERS`; an unknown scheme is a
  ValueError naming the schemes there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from directory.backend import Backend, Tables
from directory.backend.index_keys import IndexSpec
from directory.schema import Schema


@dataclass(frozen=True, slots=True)
class Storage:
    """What every backend is opened with."""
    url: str
    schema: Schema
    indexed: Iterable[str | IndexSpec]
    tables: Tables
    cache_entries: int
    cache_bytes: int


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite database at `path`."""
    return "sqlite://" + quote(str(path.resolve()))


def _sqlite(storage: Storage) -> Backend:
    from directory.backend.sqlite import SQLiteBackend

    return SQLiteBackend(Path(unquote(urlsplit(storage.url).path)), storage.schema, storage.indexed,
                         storage.cache_entries, storage.cache_bytes, storage.tables)


def _postgresql(storage: Storage) -> Backend:
    from directory.backend.postgres import PostgresBackend

    return PostgresBackend(storage.url, storage.schema, storage.indexed, storage.cache_entries,
                           storage.cache_bytes, storage.tables)


OPENERS: Mapping[str, Callable[[Storage], Backend]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


def open_backend(storage: Storage) -> Backend:
    scheme = urlsplit(storage.url).scheme
    opener = OPENERS.get(scheme)
    if opener is None:
        raise ValueError(f"{storage.url}: unknown storage scheme {scheme!r} "
                         f"(one of {', '.join(sorted(OPENERS))})")
    return opener(storage)
