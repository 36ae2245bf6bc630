"""A search's candidates, by the same steps in every backend (DESIGN.md,
"Storage"); a backend gives only its statements (`Reads`).

- An Equal query (mail=..., uid=...), the common lookup, reads the index
  and the entries in one statement.
- Any other index query gives ids (an intersection the ids every part
  gives, a union the ids any part gives). The keys and ranges an
  intersection names directly (a substring's grams) are intersected by
  the database in one statement (`common_ids`), where Python built a set
  of each gram's ids (hundreds at 100,000 entries) to keep a few. With
  fewer than `MAX_IDS` ids, or a base scope, the entries are read by id,
  in id order.
- Otherwise, and without an index query, the scope is read: the base
  entry, the entries one level below it (the naming contexts below the
  root), or the range of paths below it (paths.py), with the base itself
  except for the children scope. Scans read `SCAN_CHUNK` rows to a
  statement, each chunk after the last key seen (`scan`), as candidates
  found by id are read a chunk at a time: a search that stops early (a
  size limit) reads little, a scan of the whole directory never holds all
  its rows at once, and a search sees each entry as its chunk found it.
- Entries found by the index are kept to the scope (`paths.in_scope`);
  the caller evaluates the filter on every candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from directory.backend import Equal, IndexQuery, Intersection, Param, Presence, Range, Union
from directory.backend.paths import MAX_IDS, in_scope, path_of
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope

SCAN_CHUNK = 256

ScanRow = tuple[Any, ...]


def scan(read: Callable[[Any], Sequence[ScanRow]]) -> Iterator[Sequence[ScanRow]]:
    """The chunks of a scan, `SCAN_CHUNK` rows to a statement, each given
    as soon as its statement ran: `read(None)` gives the first ones in key
    order, `read(key)` those after `key`; a row's key is its last column."""
    key = None
    while True:
        rows = read(key)
        yield rows
        if len(rows) < SCAN_CHUNK:
            return
        key = rows[-1][-1]


class Reads(Protocol):
    """A backend's statements for the steps above."""

    def get(self, dn: DN) -> Entry | None: ...

    def _equal_entries(self, query: Equal) -> list[Entry]:
        """The entries holding the key, in id order."""
        ...

    def _ids(self, queries: Sequence[Equal | Range]) -> Iterable[int]:
        """The ids every one of `queries` gives (`common_ids`)."""
        ...

    def _by_ids(self, ids: Sequence[int]) -> Iterable[Entry]:
        """The entries of `ids` (in that order) that exist."""
        ...

    def _children(self, base_path: bytes) -> Iterable[Entry]:
        """The entries one level below the entry at `base_path` (b"": the root)."""
        ...

    def _subtree(self, base_path: bytes, with_base: bool) -> Iterable[Entry]:
        """The entries below `base_path` (and itself when `with_base`), in path order."""
        ...


def search(reads: Reads, base: DN, scope: Scope, query: IndexQuery | None) -> Iterator[Entry]:
    if isinstance(query, Equal):
        yield from in_scope(reads._equal_entries(query), base, scope)
        return
    if query is not None:
        ids = lookup(reads, query)
        if len(ids) < MAX_IDS or scope == Scope.BASE:
            yield from in_scope(reads._by_ids(sorted(ids)), base, scope)
            return
    if scope == Scope.BASE:
        entry = reads.get(base)
        if entry is not None:
            yield entry
    elif scope == Scope.ONE:
        yield from reads._children(path_of(base))
    else:
        yield from reads._subtree(path_of(base), scope == Scope.SUB)


def lookup(reads: Reads, query: IndexQuery) -> set[int]:
    """The ids the index gives for `query`."""
    if isinstance(query, Union):
        return set().union(*(lookup(reads, q) for q in query.queries))
    if not isinstance(query, Intersection):
        return set(reads._ids((query,)))
    keys = [q for q in query.queries if not isinstance(q, Intersection | Union)]
    parts = [lookup(reads, q) for q in query.queries if isinstance(q, Intersection | Union)]
    if keys:
        parts.append(set(reads._ids(keys)))
    return set.intersection(*parts) if parts else set()


def common_ids(queries: Sequence[Equal | Range],
               where: Callable[[Equal | Range], tuple[str, tuple[Param, ...]]],
               ) -> tuple[str, tuple[Param, ...]]:
    """One statement for the ids every query gives; `where` is a backend's
    condition on the index rows of one query, in its parameter style."""
    selects: list[str] = []
    params: list[Param] = []
    for query in queries:
        condition, more = where(query)
        distinct = "DISTINCT " if isinstance(query, Presence) else ""
        selects.append(f"SELECT {distinct}id FROM idx WHERE {condition}")
        params.extend(more)
    return " INTERSECT ".join(selects), tuple(params)
