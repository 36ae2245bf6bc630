"""Opening the directory: configuration -> schema, storage and DSA.

- `open_directory` is shared by the server and the offline commands (LDIF
  import and export, the CA's and the KMS's commands), so both see the
  same schema and storage; with a reactor the DSA gets its writer thread.
- Storage is opened by URL (`storage_url`) with the CA's, the KMS's and
  syncrepl's tables (the consumer's; the provider's contextCSN and
  delete log), which opening creates once; no command creates tables.
  The entry cache's bounds are the server's: each of its workers opens
  with its share, so more workers do not mean more memory for the
  cache. The URL
  names the SQLite file `storage.path`, or the PostgreSQL database
  `storage.url` with the password file `certdir init --storage-url` wrote.
- A `storage.path` that is not an SQLite database, a PostgreSQL server
  that cannot be reached or refuses the login, or an access rule the
  schema refutes (an unknown attribute, a DN that does not parse), is a
  ConfigError naming it, in one line; so is a schema file that does not
  load (its file, line and reason).
- Neither the server's wiring nor the commands import each other: both
  import this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ca.acme.store import TABLES as ACME_TABLES
from ca.store import TABLES as CA_TABLES
from certdir.config import CONFIG_FILE, Config, ConfigError
from certdir.storage_url import connect_url, one_line
from directory.acl.rules import RuleError
from directory.backend.opening import Storage, open_backend
from directory.backend.pg_nodes import NodesExhausted
from directory.dsa import DSA
from directory.replication.context import TABLES as CONTEXT_TABLES
from directory.replication.deletes import TABLES as DELETE_TABLES
from directory.replication.store import TABLES as REPLICATION_TABLES
from directory.schema import Schema
from directory.schema_files import SchemaError
from kms.store import TABLES as KMS_TABLES

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schema"


def load_schema(config: Config) -> Schema:
    try:
        return Schema.load([SCHEMA_DIR, *config.directory.schema_paths])
    except SchemaError as e:
        raise ConfigError(f"schema.paths: {e}") from None


@contextmanager
def storage_errors(config: Config) -> Iterator[None]:
    """Opening the database: one that is not SQLite, a PostgreSQL server
    that cannot be reached or refuses, or a database whose node numbers are
    all held, is a ConfigError naming it. psycopg is imported for a
    storage.url only (certdir/storage_url.py)."""
    postgres: tuple[type[Exception], ...] = ()
    if config.directory.storage_url is not None:
        import psycopg
        postgres = (psycopg.Error, NodesExhausted)
    try:
        yield
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"storage.path: {config.directory.database}: {e}") from None
    except postgres as e:
        raise ConfigError(f"storage.url: {config.directory.storage_url}: {one_line(e)}") from None


def storage_url(config: Config) -> str:
    """Where the directory's storage is: `storage.url`, else the SQLite file
    `storage.path`."""
    if config.directory.storage_url is not None:
        return connect_url(config.directory.storage_url, config.data_dir)
    return "sqlite://" + quote(str(config.directory.database.resolve()))


def open_directory(config: Config, reactor: Any = None, worker: int = 0) -> DSA:
    """The directory; with a reactor it gets a writer thread for updates
    (and Twisted is imported only then)."""
    schema = load_schema(config)
    # The cache bounds are the server's: each worker keeps its share.
    share = config.workers
    with storage_errors(config):
        backend = open_backend(Storage(storage_url(config), schema, config.directory.indexes,
                                       CA_TABLES + ACME_TABLES + KMS_TABLES + REPLICATION_TABLES
                                       + CONTEXT_TABLES + DELETE_TABLES,
                                       config.directory.cache_entries // share,
                                       config.directory.cache_bytes // share))
    try:
        with storage_errors(config):  # the DSA takes a node number from the database
            dsa = DSA(config.directory, schema, backend, None, worker)
    except RuleError as e:
        backend.close()
        raise ConfigError(f"{config.data_dir / CONFIG_FILE}: {e}") from None
    except ConfigError:
        backend.close()
        raise
    if reactor is not None:
        from directory.backend.writer import Writer

        # ldaptor's client imports the reactor: only once the server installed its own.
        from directory.chaining.peers import Peers

        dsa.writer = Writer(backend, reactor)
        dsa.peers = Peers(config.directory.referral_list, schema, dsa.parse_dn, reactor)
    return dsa


@contextmanager
def offline_directory(config: Config) -> Iterator[DSA]:
    """The directory for a command run beside (or without) the server, closed after."""
    dsa = open_directory(config)
    try:
        yield dsa
    finally:
        dsa.backend.close()
