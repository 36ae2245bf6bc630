"""The storage contract every backend meets (DESIGN.md, "Storage").

- `get` and `search` read committed state and may be called on the reactor
  thread: they must not block on writers.
- `transaction()` is the only way to change anything. Everything done inside
  one transaction commits together or not at all; `savepoint()` nests an
  atomic unit inside it (group commit runs each request in its own).
- A transaction sees its own writes.
- `search` returns candidates in scope; the caller evaluates the filter. An
  `IndexQuery` narrows the candidates to a superset of the matches;
  `estimate` says about how many entries it would give, so a planner can
  leave out an index that is not selective. `After` is an ordering range
  on an index's keys (the entries changed after a CSN, for the syncrepl
  provider); the planner never makes one from a filter.
- `refresh()` at the start of an operation makes the next reads see every
  commit acknowledged so far, by any process or front end on the same
  database.
- The application's own tables (the CA's, the KMS's) are declared as
  `Tables` when the backend is opened and created then, once; their rows are
  read and written through `Records`: inside a transaction
  (`Transaction.records`, committing with the entries) or in one read
  snapshot (`Backend.reading()`). No backend hands out its connections.
- A statement that would break a uniqueness constraint (a primary key, a
  UNIQUE column) raises `Conflict`, whatever the backend: on a database
  several front ends share, that is how a racing writer learns another took
  the number or the name first.
- Several processes and front ends may have one database open at once:
  `node` gives each opening a number no other live opening holds (the
  server id of its CSNs); `copies` makes and loads consistent copies of a
  whole database by URL, with or without a backend open on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

from directory.backend.postings import Gathering, LeftOut, Postings
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError
from directory.schema import Schema


@dataclass(init=False, unsafe_hash=True, slots=True)
class Equal:
    attribute: Final[str]
    key: Final[bytes]

    def __init__(self, attribute: str, key: bytes) -> None:
        self.attribute = attribute
        self.key = key


@dataclass(init=False, unsafe_hash=True, slots=True)
class Prefix:
    attribute: Final[str]
    prefix: Final[bytes]

    def __init__(self, attribute: str, prefix: bytes) -> None:
        self.attribute = attribute
        self.prefix = prefix


@dataclass(frozen=True, slots=True)
class Presence:
    attribute: str


@dataclass(frozen=True, slots=True)
class After:
    """The entries holding a key of `attribute` that sorts after `key`."""
    attribute: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Intersection:
    queries: tuple[IndexQuery, ...]


@dataclass(frozen=True, slots=True)
class Union:
    queries: tuple[IndexQuery, ...]


IndexQuery: TypeAlias = Equal | Prefix | Presence | After | Intersection | Union
# The queries that read a range of one attribute's index rows.
Range: TypeAlias = Prefix | Presence | After

# A statement's parameter and a result row.
Param: TypeAlias = str | int | bytes | None
Row: TypeAlias = tuple[Any, ...]

# CREATE TABLE / CREATE INDEX ... IF NOT EXISTS statements, in the portable
# dialect `Records` documents.
Tables: TypeAlias = tuple[str, ...]


class Conflict(Exception):
    """A statement broke a uniqueness constraint: another transaction holds
    the key (and, on a shared database, may have committed it first)."""


class NewEntry(NamedTuple):
    """An entry for `Transaction.insert_many`, already serialized, below the
    entry at path `parent` (None: a naming context, which has no parent)."""
    dn: str
    path: bytes
    parent: bytes | None
    blob: bytes


class EntryRefused(Exception):
    """`insert_many` could not store the entry at `place` of its batch (it
    already exists, or its parent does not); `error` says so, as `insert`
    would have."""

    def __init__(self, place: int, error: LDAPError) -> None:
        super().__init__(place, error)
        self.place = place
        self.error = error


# Node numbers are the CSN's three hex digits of server id.
MAX_NODE = 0xFFF


class Records(Protocol):
    """Statements on the application's tables, in the SQL both backends run:

    - `?` placeholders; column types INTEGER, TEXT and BLOB; an
      `id INTEGER PRIMARY KEY` column is numbered by the database, and an
      INSERT that needs the number ends with `RETURNING id`;
    - no rowid, no booleans (compare with 0 and 1), no `INSERT OR ...`
      (use `ON CONFLICT ... DO ...`), no `executescript`.
    """

    def rows(self, sql: str, params: Sequence[Param] = ()) -> list[Row]: ...

    def row(self, sql: str, params: Sequence[Param] = ()) -> Row | None: ...

    def run(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run a statement; the number of rows it changed. `Conflict` when it
        would break a uniqueness constraint (so may `rows` and `row`, for an
        INSERT ... RETURNING)."""
        ...


class Transaction(Protocol):
    @property
    def records(self) -> Records: ...

    # Ids of the entries this transaction changed, for the caches.
    touched: set[int]

    def get(self, dn: DN) -> Entry | None: ...

    def has_children(self, dn: DN) -> bool: ...

    def subtree(self, dn: DN) -> Iterator[Entry]:
        """The entry and every descendant, parents before children."""
        ...

    def find(self, attribute: str, key: bytes) -> Entry | None:
        """The first entry (by id) with the index row (`attribute`, `key`),
        this transaction's writes included."""
        ...

    def add(self, entry: Entry, *, root: bool = False) -> None: ...

    def insert(self, dn: str, path: bytes, parent: bytes | None, blob: bytes,
               index_rows: Iterable[tuple[str, bytes]]) -> None:
        """Store a new entry already serialized (bulk loads), below the entry
        at path `parent` (None: a naming context, which has no parent)."""
        ...

    def insert_many(self, entries: Sequence[NewEntry], postings: Postings) -> None:
        """Store new entries in order (bulk loads), as `insert` each, with the
        index rows `postings` give them by their places in `entries`; the
        first one that cannot be stored raises `EntryRefused`."""
        ...

    def left_out(self) -> LeftOut:
        """The index keys of each index this bulk load leaves out so far
        (index_stats.py, `unkept`): postings for them may be left out of
        what `insert_many` is given, as it would drop them."""
        ...

    def flush(self) -> None:
        """Write whatever the transaction buffered (bulk index rows)."""
        ...

    def replace(self, entry: Entry) -> None: ...

    def delete(self, dn: DN) -> None: ...

    def rename(self, old: DN, entry: Entry) -> None:
        """Give the entry at `old` the DN and attributes of `entry`, moving
        every descendant with it."""
        ...

    def savepoint(self) -> AbstractContextManager[None]: ...


class Backend(Protocol):
    schema: Schema
    # What the index holds: type keys with equality rows and `<type>:sub`
    # for grams (`index_keys.IndexKeys.names`).
    indexed: frozenset[str]

    def get(self, dn: DN) -> Entry | None: ...

    def has_children(self, dn: DN) -> bool: ...

    def count(self) -> int: ...

    def search(self, base: DN, scope: Scope, query: IndexQuery | None) -> Iterator[Entry]: ...

    def estimate(self, query: IndexQuery) -> int:
        """About how many entries `query` selects (index statistics)."""
        ...

    def index_rows(self, attributes: Mapping[str, tuple[bytes, ...]]) -> set[tuple[str, bytes]]:
        """The index rows of an entry's attributes."""
        ...

    def gather(self, attributes: Mapping[str, tuple[bytes, ...]], place: int,
               into: Gathering) -> None:
        """Add the index rows of an entry's attributes to the postings of a
        batch (`insert_many`), the entry at `place`."""
        ...

    def refresh(self) -> bool:
        """Make reads see every acknowledged commit; True when cached state
        was dropped."""
        ...

    def reading(self) -> AbstractContextManager[Records]:
        """The application's tables as of one commit."""
        ...

    def transaction(self, *, bulk: bool = False) -> AbstractContextManager[Transaction]:
        """A `bulk` one is a load while nothing else uses the database (`ldif
        import`): the backend may write it faster in ways that make other
        openings wait until it ends."""
        ...

    def invalidate(self, ids: frozenset[int]) -> None:
        """Forget cached copies of entries a committed transaction changed."""
        ...

    def node(self, local: int) -> int:
        """This opening's number, 0..MAX_NODE, held by no other process or
        front end that has the database open (the server id of its CSNs).
        `local` is the process's number on its own machine (the configured
        server id plus the worker): a backend only one machine opens
        returns it as it is, a shared one the lowest free number from it up."""
        ...

    def close(self) -> None: ...
