"""KMS tests: each runs on a real SQLite file holding the KMS tables, opened as
the directory opens its storage (`directory.backend.opening`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from directory.backend import Records
from directory.backend.opening import Storage, open_backend
from directory.schema import Schema
from kms.store import TABLES

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
T = TypeVar("T")


class Database:
    """The KMS's tables in their own storage. `edit` is a plain connection to
    the file, as whoever changes it behind certdir's back would use."""

    def __init__(self, path: Path) -> None:
        self.backend = open_backend(Storage("sqlite://" + quote(str(path)), SCHEMA, (), TABLES,
                                            1000, 1 << 20))
        self.edit = sqlite3.connect(path, isolation_level=None)

    @contextmanager
    def transaction(self) -> Iterator[Records]:
        with self.backend.transaction() as txn:
            yield txn.records

    def read(self, work: Callable[[Records], T]) -> T:
        with self.backend.reading() as records:
            return work(records)

    def write(self, work: Callable[[Records], T]) -> T:
        with self.transaction() as records:
            return work(records)

    def close(self) -> None:
        self.edit.close()
        self.backend.close()
