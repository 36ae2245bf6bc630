"""The storage contract every backend meets (DESIGN.md, "Storage").

- `get` and `search` read committed state and may be called on the reactor
  thread: they must not block on writers.
- `transaction()` is the only way to change anything. Everything done inside
  one transaction commits together or not at all; `savepoint()` nests an
  atomic unit inside it (group commit runs each request in its own).
- A transaction sees its own writes.
- `search` returns candidates in scope; the caller evaluates the filter. An
  `IndexQuery` narrows the candidates to a superset of the matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope


@dataclass(frozen=True, slots=True)
class Equal:
    attribute: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Prefix:
    attribute: str
    prefix: bytes


@dataclass(frozen=True, slots=True)
class Presence:
    attribute: str


@dataclass(frozen=True, slots=True)
class Intersection:
    queries: tuple[IndexQuery, ...]


@dataclass(frozen=True, slots=True)
class Union:
    queries: tuple[IndexQuery, ...]


IndexQuery: TypeAlias = Equal | Prefix | Presence | Intersection | Union


class Transaction(Protocol):
    def get(self, dn: DN) -> Entry | None: ...

    def has_children(self, dn: DN) -> bool: ...

    def subtree(self, dn: DN) -> Iterator[Entry]:
        """The entry and every descendant, parents before children."""
        ...

    def add(self, entry: Entry, *, root: bool = False) -> None: ...

    def replace(self, entry: Entry) -> None: ...

    def delete(self, dn: DN) -> None: ...

    def rename(self, old: DN, entry: Entry) -> None:
        """Give the entry at `old` the DN and attributes of `entry`, moving
        every descendant with it."""
        ...

    def savepoint(self) -> AbstractContextManager[None]: ...


class Backend(Protocol):
    indexed: frozenset[str]

    def get(self, dn: DN) -> Entry | None: ...

    def has_children(self, dn: DN) -> bool: ...

    def search(self, base: DN, scope: Scope, query: IndexQuery | None) -> Iterator[Entry]: ...

    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def invalidate(self, ids: frozenset[int]) -> None:
        """Forget cached copies of entries a committed transaction changed."""
        ...

    def close(self) -> None: ...
