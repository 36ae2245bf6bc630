"""The embedded SQLite backend (DESIGN.md, "Storage").

- WAL journal with `synchronous=FULL`: a transaction that returned from
  COMMIT survives a crash or `kill -9` at any later moment, and readers never
  wait for the writer.
- One row per entry: parent id, the DN as given, its *path* (normalised RDNs
  from the root down, each ended by a NUL byte) and its attributes
  (`entry.serialize`). A subtree is a range of paths, so subtree scopes never scan the
  whole table; one-level scopes use the parent index. Scans read a chunk
  of rows per statement (`candidates.scan`). RFC 4514 escapes NUL
  in a normalised DN, so a NUL in a path is always a separator.
- Index rows (attribute, key, entry id) as `index_keys` computes them for
  the indexes named in config (equality keys, substring grams); they are
  rebuilt at open when that configuration changes. New rows wait in the
  transaction and are written in key order: sorted inserts touch each
  B-tree page once. A bulk load's (`insert_many`) come as postings, a
  key's entries at once, and SQLite expands them into rows itself
  (`_POSTED`): no Python call per row. Grams most of a load's entries
  hold are left out (index_stats.py, `unkept`), judged each time the
  waiting rows of shared keys are written, on the entries added since.
  A bulk transaction (`ldif import`) while no other connection has the
  file open uses the rollback journal (still `synchronous=FULL`: all or
  nothing after a crash), so its pages are written once, not into the
  WAL and again by the checkpoint: a fifth of an import's time. It
  writes the index statistics from its postings (index_stats.py, `loaded`).
- `refresh` looks at data_version only when the WAL index's header moved
  (`wal_watch`): one pread instead of a statement when nothing was
  committed, which is nearly every time.
- Statistics (`estimate`) as index_stats.py keeps them for every backend,
  in `idx_stats`. The directory's size is taken to be the highest id
  (never less than the number of entries), read at open and whenever
  `refresh` sees a commit.
- The ids of index lookups (`_ids`) are kept, bounded in bytes, until
  `refresh` sees a commit (one by this process's writer too): a gram's or a
  prefix's ids are read once per change of the directory, not per search.
  A lookup whose statement ran before a commit was seen is not kept (the
  cache's epoch).
- Decoded entries are cached per id, bounded in count and in bytes: an
  entry counts for `MEMO_FACTOR` times its decoded objects, since what
  searches memoise on it (encoded attributes, normalised keys) is bounded
  by the entry's own size times the rules in use; the factor is measured,
  so the bound is about the memory the cache really holds. The writer reports what it changed
  after each commit and the cache forgets those ids. Other processes may
  write the same database (server workers, `certdir ca` commands while the
  server runs): when SQLite's data_version says something was committed,
  `refresh` forgets the entries the change log (`sqlite_changes`) names.
- Rows read before the reader yields (a chunk of `_by_ids`, of a scan) may
  be decoded after a `refresh` forgot their entries: such a row is the
  search's snapshot, returned but cached only when nothing was forgotten
  since its statement ran (the cache's epoch, cache.py), so no reader
  finds a copy older than the entry's last change.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from directory.backend import (
    After,
    Conflict,
    EntryRefused,
    Equal,
    IndexQuery,
    NewEntry,
    Param,
    Prefix,
    Range,
    Row,
    Tables,
    candidates,
    index_stats,
    sqlite_changes,
)
from directory.backend.candidates import SCAN_CHUNK, ScanRow, common_ids, scan
from directory.backend.index_keys import GRAM, IndexKeys, IndexSpec, is_substring_name
from directory.backend.index_stats import Statistics
from directory.backend.paths import after, path_of
from directory.backend.postings import Gathering, LeftOut, Postings, places
from directory.backend.wal_watch import WalWatch
from directory.entry import Entry, deserialize, serialize
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    path BLOB NOT NULL UNIQUE,
    dn TEXT NOT NULL,
    attrs BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_parent ON entries(parent);
CREATE TABLE IF NOT EXISTS idx (
    attr TEXT NOT NULL,
    key BLOB NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (attr, key, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_stats (
    attr TEXT NOT NULL,
    key BLOB NOT NULL,
    entries INTEGER NOT NULL,
    PRIMARY KEY (attr, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_unkept (
    attr TEXT NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (attr, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


INDEX_BATCH = 50_000
# The index rows of bulk loads wait to be written in key order. The rows
# of keys several entries hold (grams, mostly) are written every this many
# batches' keys: each write adds the newest ids at the end of each key's
# rows, a page or so per key. The keys of one entry so far (mostly those of
# equality indexes) are written at the end, or when this many wait (about
# 150 bytes each in memory): written in small sorted runs, a run of unique
# keys would touch every page of the index again.
SHARED_BATCH = 200_000
SINGLE_BATCH = 4_000_000
# One row's entries from postings: a JSON object naming, under the id of
# each batch's first entry, the places in that batch of the entries
# holding the row ({"101": [0, 5], "1351": [3]}).
_POSTED = ("INSERT OR IGNORE INTO idx SELECT ?, ?, CAST(batch.key AS INTEGER) + place.value "
           "FROM json_each(?) AS batch, json_each(batch.value) AS place")


# Measured on CPython 3.11 (tracemalloc, inetOrgPerson entries).
ENTRY_OVERHEAD = 700
ATTRIBUTE_OVERHEAD = 100
VALUE_OVERHEAD = 40
# What searches memoise on a cached entry, the cache's own records and the
# allocator's slack, as a share of the decoded entry. Measured: a served
# directory of 100,000 people with certificates under type-ahead and mail
# lookups holds 1.45 times the decoded entries; entries with every
# attribute encoded and four filters memoised hold 2.23 times
# (tests/unit/test_limits_cache.py), which the bound must cover.
MEMO_FACTOR = 2.5
# SQLite's page cache per connection. The reader's holds the trees' inner
# pages and the hottest leaves (more bought no CPU per search at 100,000
# entries: the leaves a lookup reads are spread over the whole file, and the
# kernel's page cache holds them anyway); the writer's only what one commit
# changes (a bigger one left `ldif import`'s CPU unchanged).
READER_CACHE_KIB = 16 * 1024
WRITER_CACHE_KIB = 8 * 1024
# How long a connection waits for another's lock before it fails.
BUSY_TIMEOUT_MS = 30_000
# The ids index lookups gave (`_ids`: grams, prefixes), kept until `refresh`
# sees a commit; what each costs in memory, a list of ids and its key
# (tracemalloc).
POSTINGS_BYTES = 8 * 1024 * 1024
POSTING_OVERHEAD = 500
ID_COST = 40
# Entries read by one statement when a search reads them by id.
CHUNK = 64


def footprint(entry: Entry, blob: bytes) -> int:
    """About the bytes a cached entry keeps alive: its stored form stands
    for the keys' and values' own bytes (it holds them, and a little more),
    so no loop in Python runs over them."""
    attributes = entry.attributes
    return int(MEMO_FACTOR * (ENTRY_OVERHEAD + len(blob) + ATTRIBUTE_OVERHEAD * len(attributes)
                              + VALUE_OVERHEAD * sum(map(len, attributes.values()))))


# SQLite's extended result codes for a broken uniqueness constraint.
_UNIQUENESS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


class SQLiteRecords:
    """`Records` on one connection; the caller owns its transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _execute(self, sql: str, params: Sequence[Param]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as e:
            if e.sqlite_errorname in _UNIQUENESS:
                raise Conflict(str(e)) from None
            raise

    def rows(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        return self._execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Param] = ()) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    def run(self, sql: str, params: Sequence[Param] = ()) -> int:
        return self._execute(sql, params).rowcount


def connect(path: Path, cache_kib: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size=-{cache_kib}")
    return conn


def _where(query: Equal | Range) -> tuple[str, tuple[Param, ...]]:
    """The index rows of a key, of a prefix, of a presence, or after a key."""
    if isinstance(query, Equal):
        return "attr=? AND key=?", (query.attribute, query.key)
    if isinstance(query, Prefix):
        return "attr=? AND key>=? AND key<?", (
            query.attribute, query.prefix, query.prefix + b"\xff\xff\xff\xff")
    if isinstance(query, After):
        return "attr=? AND key>?", (query.attribute, query.key)
    return "attr=?", (query.attribute,)


class SQLiteBackend:
    def __init__(self, path: Path, schema: Schema, indexed: Iterable[str | IndexSpec],
                 cache_entries: int = 200_000, cache_bytes: int = 512 * 1024 * 1024,
                 tables: Tables = ()) -> None:
        self.path = path
        self._data_version = -1
        self.schema = schema
        self._keys = IndexKeys(schema, indexed)
        self.indexed = self._keys.names
        self._statistics = Statistics({})
        self._size = 0
        self._cache: BoundedCache[int, Entry] = BoundedCache(cache_bytes, cache_entries)
        # Which id holds a path, for the paths of entries looked up by DN.
        self._paths: BoundedCache[bytes, int] = BoundedCache(cache_bytes // 4, cache_entries)
        self._postings: BoundedCache[tuple[Equal | Range, ...], list[int]] = BoundedCache(
            POSTINGS_BYTES)
        self._writer_conn = connect(path, WRITER_CACHE_KIB)
        self._writer_conn.executescript(SCHEMA_SQL + sqlite_changes.TABLE_SQL)
        self._reader = connect(path, READER_CACHE_KIB)
        self._seen = sqlite_changes.last(self._reader)
        self._watch = WalWatch.open(path)
        self._stamp: bytes | None = None
        self._create(tables)
        self._reindex_if_needed()
        self._load_statistics()

    def _create(self, tables: Tables) -> None:
        """The application's tables, created when their statements change
        (once per database, normally)."""
        wanted = hashlib.sha256("\0".join(tables).encode()).hexdigest()
        row = self._writer_conn.execute("SELECT value FROM meta WHERE name='tables'").fetchone()
        if row is not None and row[0] == wanted:
            return
        with self.transaction() as txn:
            for statement in tables:
                txn.conn.execute(statement)
            txn.conn.execute("INSERT OR REPLACE INTO meta VALUES ('tables', ?)", (wanted,))

    def _reindex_if_needed(self) -> None:
        wanted = ",".join(sorted(self.indexed)) + f";{GRAM}-grams"
        row = self._writer_conn.execute("SELECT value FROM meta WHERE name='indexes'").fetchone()
        if row is not None and row[0] == wanted:
            return
        with self.transaction() as txn:
            txn.conn.execute("DELETE FROM idx")
            txn.conn.execute("DELETE FROM idx_unkept")
            for entry_id, dn, blob in txn.conn.execute("SELECT id, dn, attrs FROM entries"):
                txn.index(deserialize(self.schema, dn, blob, entry_id), True)
            txn.conn.execute("INSERT OR REPLACE INTO meta VALUES ('indexes', ?)", (wanted,))
            index_stats.forget(txn.records)

    def _load_statistics(self) -> None:
        entries = self._size = self._entries()
        records = SQLiteRecords(self._writer_conn)
        if index_stats.stale(records, entries):
            # Checked again in the transaction: another process may have counted.
            with self.transaction() as txn:
                index_stats.recount(txn.records, entries)
        self._statistics = Statistics.read(records)

    def _entries(self) -> int:
        return int(self._reader.execute("SELECT coalesce(max(id), 0) FROM entries")
                   .fetchone()[0])

    def index_rows(self, attributes: Mapping[str, tuple[bytes, ...]]) -> set[tuple[str, bytes]]:
        """The (attribute, key) index rows of indexed attribute values."""
        return self._keys.rows(attributes)

    def gather(self, attributes: Mapping[str, tuple[bytes, ...]], place: int,
               into: Gathering) -> None:
        self._keys.gather(attributes, place, into)

    def _entry(self, epoch: int, entry_id: int, dn: str, blob: bytes) -> Entry:
        """The entry of a row its statement read at the cache's `epoch`."""
        entry = self._cache.get(entry_id)
        if entry is None:
            entry = deserialize(self.schema, dn, blob, entry_id)
            if epoch == self._cache.epoch:
                self._cache.put(entry_id, entry, footprint(entry, blob))
        return entry

    @contextmanager
    def reading(self) -> Iterator[SQLiteRecords]:
        conn = self._reader
        if conn.in_transaction:
            yield SQLiteRecords(conn)
            return
        conn.execute("BEGIN")
        try:
            yield SQLiteRecords(conn)
        finally:
            conn.execute("COMMIT")

    def refresh(self) -> bool:
        """Forget the entries changed since the last call (by another
        process, or by this one's writer); True when anything was committed."""
        stamp = None if self._watch is None else self._watch.stamp()
        if stamp is not None and stamp == self._stamp:
            return False
        self._stamp = stamp
        version = self._reader.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        self._data_version = version
        self._postings.clear()
        self._seen, changed = sqlite_changes.since(self._reader, self._seen)
        if changed is None:
            self._cache.clear()
            self._paths.clear()
        else:
            self.invalidate(frozenset(changed))
        self._size = self._entries()
        return True

    def _by_ids(self, ids: Sequence[int]) -> Iterator[Entry]:
        """The entries of `ids` in that order, those not cached read `CHUNK`
        ids to a statement; each decoded only when the caller gets to it."""
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            found = {i: e for i in chunk if (e := self._cache.get(i)) is not None}
            missing = [i for i in chunk if i not in found]
            rows: dict[int, tuple[int, str, bytes]] = {}
            epoch = self._cache.epoch
            if missing:
                marks = ",".join("?" * len(missing))
                rows = {row[0]: row for row in self._reader.execute(
                    f"SELECT id, dn, attrs FROM entries WHERE id IN ({marks})", missing)}
            for entry_id in chunk:
                entry = found.get(entry_id)
                if entry is None:
                    row = rows.get(entry_id)
                    if row is None:
                        continue
                    entry = self._entry(epoch, *row)
                yield entry

    def get(self, dn: DN) -> Entry | None:
        if not dn:
            return None
        path = path_of(dn)
        # A cached entry is current (changes evict it), so if the one last
        # seen at this path still has this DN, it is the entry here.
        entry = self._cache.get(self._paths.get(path) or 0)
        if entry is not None and entry.dn == dn:
            return entry
        row = self._reader.execute(
            "SELECT id, dn, attrs FROM entries WHERE path=?", (path,)).fetchone()
        if row is None:
            return None
        self._paths.put(path, row[0], len(path) + 100)
        return self._entry(self._cache.epoch, *row)

    def has_children(self, dn: DN) -> bool:
        return _has_children(self._reader, dn)

    def count(self) -> int:
        return int(self._reader.execute("SELECT count(*) FROM entries").fetchone()[0])

    def search(self, base: DN, scope: Scope, query: IndexQuery | None) -> Iterator[Entry]:
        return candidates.search(self, base, scope, query)

    def _equal_entries(self, query: Equal) -> list[Entry]:
        rows = self._reader.execute(
            "SELECT e.id, e.dn, e.attrs FROM idx i JOIN entries e ON e.id=i.id "
            "WHERE i.attr=? AND i.key=? ORDER BY e.id", (query.attribute, query.key))
        epoch = self._cache.epoch
        return [self._entry(epoch, *row) for row in rows.fetchall()]

    def _ids(self, queries: Sequence[Equal | Range]) -> list[int]:
        asked = tuple(queries)
        ids = self._postings.get(asked)
        if ids is None:
            epoch = self._postings.epoch
            sql, params = common_ids(queries, _where)
            ids = [row[0] for row in self._reader.execute(sql, params)]
            if epoch == self._postings.epoch:
                self._postings.put(asked, ids, POSTING_OVERHEAD + ID_COST * len(ids))
        return ids

    def _children(self, base_path: bytes) -> Iterator[Entry]:
        """The entries one level below `base_path`, in id order (the parent
        index holds each parent's children in id order)."""
        parent = 0
        if base_path:
            row = self._reader.execute(
                "SELECT id FROM entries WHERE path=?", (base_path,)).fetchone()
            if row is None:
                return
            parent = row[0]

        def read(last: int | None) -> list[ScanRow]:
            return self._reader.execute(
                "SELECT id, dn, attrs, id FROM entries WHERE parent=? AND id>? "
                "ORDER BY id LIMIT ?", (parent, -1 if last is None else last,
                                        SCAN_CHUNK)).fetchall()

        for rows in scan(read):
            epoch = self._cache.epoch
            for entry_id, dn, blob, _ in rows:
                yield self._entry(epoch, entry_id, dn, blob)

    def _subtree(self, base_path: bytes, with_base: bool) -> Iterator[Entry]:
        """The entries below `base_path` (and itself when `with_base`), in path order."""

        def read(last: bytes | None) -> list[ScanRow]:
            above = ">=" if with_base and last is None else ">"
            return self._reader.execute(
                f"SELECT id, dn, attrs, path FROM entries WHERE path{above}? AND path<? "
                "ORDER BY path LIMIT ?", (base_path if last is None else last,
                                          after(base_path), SCAN_CHUNK)).fetchall()

        for rows in scan(read):
            epoch = self._cache.epoch
            for entry_id, dn, blob, _ in rows:
                yield self._entry(epoch, entry_id, dn, blob)

    def estimate(self, query: IndexQuery) -> int:
        """About the entries `query` selects (index_stats.py)."""
        return self._statistics.estimate(query, self._size, self._count)

    def _count(self, query: Range, limit: int) -> int:
        where, params = _where(query)
        return int(self._reader.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM idx WHERE {where} LIMIT ?)",
            (*params, limit)).fetchone()[0])

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[SQLiteTransaction]:
        with self._rollback_journal() if bulk else nullcontext(), self._begun(bulk) as txn:
            yield txn

    @contextmanager
    def _begun(self, bulk: bool) -> Iterator[SQLiteTransaction]:
        conn = self._writer_conn
        conn.execute("BEGIN IMMEDIATE")
        txn = SQLiteTransaction(self, conn)
        try:
            yield txn
            txn.flush()
            if bulk:
                txn.count_load()
            sqlite_changes.log(conn, txn.touched)
        except BaseException:
            conn.execute("ROLLBACK")
            self.invalidate(frozenset(txn.touched))
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _rollback_journal(self) -> Iterator[None]:
        """A bulk load's journal: the rollback journal while no other
        connection has the file open, so each page is written once (the WAL
        writes it twice: into the log, then at the checkpoint); the WAL
        again after it. This opening's reader is closed meanwhile."""
        self._reader.close()
        conn = self._writer_conn
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass  # another connection has the file open: the WAL stays
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            yield
        finally:
            conn.execute("PRAGMA journal_mode=WAL")
            self._reader = connect(self.path, READER_CACHE_KIB)
            # Leaving the WAL deleted its index; the reader's connection made another.
            self._watch = WalWatch.open(self.path)
            self._stamp = None

    def invalidate(self, ids: frozenset[int]) -> None:
        for entry_id in ids:
            self._cache.forget(entry_id)

    def node(self, local: int) -> int:
        # Only processes of one machine open the file, and their local numbers differ.
        return local

    def close(self) -> None:
        self._reader.close()
        self._writer_conn.close()


def _has_children(conn: sqlite3.Connection, dn: DN) -> bool:
    if not dn:
        return conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None
    path = path_of(dn)
    return conn.execute("SELECT 1 FROM entries WHERE path>? AND path<? LIMIT 1",
                        (path, after(path))).fetchone() is not None


class SQLiteTransaction:
    """A write transaction on the writer connection; sees its own writes."""

    def __init__(self, backend: SQLiteBackend, conn: sqlite3.Connection) -> None:
        self.backend = backend
        self.conn = conn
        self.records = SQLiteRecords(conn)
        self.touched: set[int] = set()
        self._savepoints = 0
        self._last_parent: tuple[bytes, int] = (b"", 0)
        # Index rows of new entries wait here until the next flush; nothing
        # reads the index through a write transaction.
        self._new_index_rows: list[tuple[str, bytes, int]] = []
        self._parked = False
        # Bulk loads' index rows waiting, by attribute and key: the id of the
        # one entry holding the row, or the row's places in each batch
        # holding it, as `_POSTED` reads them.
        self._single: dict[str, dict[bytes, int]] = {}
        self._shared: dict[str, dict[bytes, list[str]]] = {}
        self._shared_size = 0
        # The entries added since the shared rows were last written, and the
        # grams left out (read from idx_unkept when first needed).
        self._added = 0
        self._unkept: dict[str, set[bytes]] | None = None
        # What a bulk load knows of its keys' counts (index_stats.loaded):
        # the ids its postings wrote by key, the entries they added, and the
        # index rows written or removed otherwise, or rolled back.
        self._posted: dict[tuple[str, bytes], int] = {}
        self._loaded = 0
        self._off = 0

    def _row_to_entry(self, row: tuple[int, str, bytes]) -> Entry:
        entry_id, dn, blob = row
        return deserialize(self.backend.schema, dn, blob, entry_id)

    def get(self, dn: DN) -> Entry | None:
        if not dn:
            return None
        row = self.conn.execute("SELECT id, dn, attrs FROM entries WHERE path=?",
                                (path_of(dn),)).fetchone()
        return None if row is None else self._row_to_entry(row)

    def has_children(self, dn: DN) -> bool:
        return _has_children(self.conn, dn)

    def subtree(self, dn: DN) -> Iterator[Entry]:
        path = path_of(dn)
        rows = self.conn.execute(
            "SELECT id, dn, attrs FROM entries WHERE path>=? AND path<? ORDER BY path",
            (path, after(path))).fetchall()
        for row in rows:
            yield self._row_to_entry(row)

    def find(self, attribute: str, key: bytes) -> Entry | None:
        self.flush()
        row = self.conn.execute(
            "SELECT e.id, e.dn, e.attrs FROM idx i JOIN entries e ON e.id=i.id "
            "WHERE i.attr=? AND i.key=? ORDER BY e.id LIMIT 1", (attribute, key)).fetchone()
        return None if row is None else self._row_to_entry(row)

    def _parent_id(self, dn: str, parent: bytes | None) -> int:
        if not parent:
            return 0
        # Bulk loads add many children to one parent in a row.
        if self._last_parent[0] == parent:
            return self._last_parent[1]
        row = self.conn.execute("SELECT id FROM entries WHERE path=?", (parent,)).fetchone()
        if row is None:
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"parent of {dn} does not exist")
        self._last_parent = (parent, int(row[0]))
        return self._last_parent[1]

    def index(self, entry: Entry, add: bool) -> None:
        rows = self.backend.index_rows(entry.attributes)
        if add:
            self._queue_index(entry.id, rows)
        else:
            self.flush()
            self.conn.executemany("DELETE FROM idx WHERE attr=? AND key=? AND id=?",
                                  [(attr, key, entry.id) for attr, key in rows])
            self._off += len(rows)

    def _queue_index(self, entry_id: int, rows: Iterable[tuple[str, bytes]]) -> None:
        self._queue_index_rows([(attr, key, entry_id) for attr, key in rows])

    def _queue_index_rows(self, rows: Iterable[tuple[str, bytes, int]]) -> None:
        waiting = len(self._new_index_rows)
        self._new_index_rows.extend(rows)
        self._off += len(self._new_index_rows) - waiting
        if len(self._new_index_rows) >= INDEX_BATCH:
            self._park()

    def _park(self) -> None:
        """Move the buffered rows to a temporary table, unordered (appends)."""
        if not self._parked:
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS idx_parked "
                              "(attr TEXT, key BLOB, id INTEGER)")
            self._parked = True
        self.conn.executemany("INSERT INTO idx_parked VALUES (?, ?, ?)", self._new_index_rows)
        self._new_index_rows.clear()

    def flush(self) -> None:
        """Write the buffered index rows, in key order: sorted inserts touch
        each B-tree page once, which makes bulk loads several times faster
        than inserting each entry's rows as they come. Many rows of single
        entries are parked first and sorted once, by SQLite's external sort:
        merged batch by batch, the grams of every batch would rewrite the end
        of every gram's rows. Postings are merged by row and written in row
        order, each row's ids expanded by SQLite (`_POSTED`)."""
        self._write_postings()
        if self._parked:
            self._park()
            self.conn.execute("INSERT OR IGNORE INTO idx SELECT attr, key, id FROM idx_parked "
                              "ORDER BY attr, key, id")
            self.conn.execute("DELETE FROM idx_parked")
            self._parked = False
        elif self._new_index_rows:
            self._new_index_rows.sort()
            self.conn.executemany("INSERT OR IGNORE INTO idx VALUES (?, ?, ?)",
                                  self._new_index_rows)
            self._new_index_rows.clear()

    def add(self, entry: Entry, *, root: bool = False) -> None:
        """Store a new entry; a `root` entry (a naming context) has no parent."""
        dn = entry.dn
        self.insert(str(dn), path_of(dn), None if root else path_of(dn.parent),
                    serialize(entry), self.backend.index_rows(entry.attributes))

    def insert(self, dn: str, path: bytes, parent: bytes | None, blob: bytes,
               index_rows: Iterable[tuple[str, bytes]]) -> None:
        """Store a new entry already serialized, below the entry at path
        `parent` (None: a naming context, which has no parent)."""
        try:
            cursor = self.conn.execute(
                "INSERT INTO entries (parent, path, dn, attrs) VALUES (?, ?, ?, ?)",
                (self._parent_id(dn, parent), path, dn, blob))
        except sqlite3.IntegrityError:
            raise LDAPError(ResultCode.ENTRY_ALREADY_EXISTS,
                            f"entry {dn} already exists") from None
        assert cursor.lastrowid is not None
        self._queue_index(cursor.lastrowid, index_rows)

    def insert_many(self, entries: Sequence[NewEntry], postings: Postings) -> None:
        ids = []
        for place, (dn, path, parent, blob) in enumerate(entries):
            try:
                cursor = self.conn.execute(
                    "INSERT INTO entries (parent, path, dn, attrs) VALUES (?, ?, ?, ?)",
                    (self._parent_id(dn, parent), path, dn, blob))
            except sqlite3.IntegrityError:
                raise EntryRefused(place, LDAPError(
                    ResultCode.ENTRY_ALREADY_EXISTS, f"entry {dn} already exists")) from None
            except LDAPError as e:
                raise EntryRefused(place, e) from None
            assert cursor.lastrowid is not None
            ids.append(cursor.lastrowid)
        if not ids:
            return
        # Each new row gets the highest id plus one, so a batch's ids are
        # consecutive unless ids ran out (SQLite then picks free ones).
        if ids[-1] - ids[0] != len(ids) - 1:
            for attribute, keys in postings.items():
                for key, held in keys.items():
                    self._queue_index_rows([(attribute, key, ids[place])
                                            for place in places(held)])
            return
        self._added += len(ids)
        self._loaded += len(ids)
        self._post(ids[0], postings)

    def _post(self, first: int, postings: Postings) -> None:
        """Merge a batch's postings (its first entry's id is `first`) into
        those waiting, as they come."""
        single, shared = self._single, self._shared
        for attribute, keys in postings.items():
            alone = single.get(attribute)
            if alone is None:
                alone = single[attribute] = {}
            held = shared.get(attribute)
            if held is None:
                held = shared[attribute] = {}
            for key, places_held in keys.items():
                found = held.get(key)
                if found is not None:
                    found.append(f'"{first}":[{places_held}]')
                    continue
                entry_id = alone.pop(key, None)
                if entry_id is not None:
                    held[key] = [f'"{entry_id}":[0]', f'"{first}":[{places_held}]']
                elif isinstance(places_held, int):
                    alone[key] = first + places_held
                else:
                    held[key] = [f'"{first}":[{places_held}]']
            self._shared_size += len(keys)
        if self._shared_size >= SHARED_BATCH:
            self._write_postings(final=False)
        if sum(map(len, single.values())) >= SINGLE_BATCH:
            self._write_postings(final=True)

    def _write_postings(self, final: bool = True) -> None:
        """Write waiting postings in row order: the rows held by several
        entries, and with `final` the rest."""
        shared, self._shared, self._shared_size = self._shared, {}, 0
        added, self._added = self._added, 0
        single: dict[str, dict[bytes, int]] = {}
        if final:
            single, self._single = self._single, {}
            # A key held alone so far may be held again by later batches.
            self._off += any(single.values())
        unkept = self._unkept_grams()
        rows: list[tuple[str, bytes, int]] = []
        for attribute in sorted(shared.keys() | single.keys()):
            held = shared.get(attribute, {})
            alone = single.get(attribute, {})
            grams = is_substring_name(attribute)
            left_out = unkept.setdefault(attribute, set()) if grams else set()
            for key in sorted(held.keys() | alone.keys()) if alone else sorted(held):
                if key in left_out:
                    continue
                entry_id = alone.get(key)
                if entry_id is not None:
                    rows.append((attribute, key, entry_id))
                    continue
                # Each batch's part is "first":[places], so the places are
                # one more than the commas.
                posted = ",".join(held[key])
                count = posted.count(",") + 1
                if grams and index_stats.unkept(count, added):
                    left_out.add(key)
                    self.conn.execute("INSERT OR IGNORE INTO idx_unkept VALUES (?, ?)",
                                      (attribute, key))
                    continue
                if rows:
                    self.conn.executemany("INSERT OR IGNORE INTO idx VALUES (?, ?, ?)", rows)
                    rows.clear()
                self.conn.execute(_POSTED, (attribute, key, "{" + posted + "}"))
                self._posted[attribute, key] = self._posted.get((attribute, key), 0) + count
        if rows:
            self.conn.executemany("INSERT OR IGNORE INTO idx VALUES (?, ?, ?)", rows)

    def count_load(self) -> None:
        """The index statistics of a bulk load, from its postings (flushed)."""
        entries = int(self.conn.execute("SELECT coalesce(max(id), 0) FROM entries")
                      .fetchone()[0])
        index_stats.loaded(self.records, entries, self._posted,
                           entries - self._loaded + self._off)

    def left_out(self) -> LeftOut:
        return {attribute: frozenset(keys) for attribute, keys in self._unkept_grams().items()}

    def _unkept_grams(self) -> dict[str, set[bytes]]:
        if self._unkept is None:
            self._unkept = {}
            for attribute, key in self.conn.execute("SELECT attr, key FROM idx_unkept"):
                self._unkept.setdefault(attribute, set()).add(bytes(key))
        return self._unkept

    def _existing(self, dn: DN) -> Entry:
        old = self.get(dn)
        if old is None:
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}")
        return old

    def replace(self, entry: Entry) -> None:
        old = self._existing(entry.dn)
        self.index(old, False)
        self.conn.execute("UPDATE entries SET attrs=? WHERE id=?",
                          (serialize(entry), old.id))
        self.index(Entry(entry.dn, entry.attributes, old.id), True)
        self.touched.add(old.id)

    def delete(self, dn: DN) -> None:
        self._last_parent = (b"", 0)
        old = self._existing(dn)
        self.index(old, False)
        self.conn.execute("DELETE FROM entries WHERE id=?", (old.id,))
        self.touched.add(old.id)

    def rename(self, old: DN, entry: Entry) -> None:
        self._last_parent = (b"", 0)
        moving = list(self.subtree(old))
        if not moving:
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {old}")
        top, descendants = moving[0], moving[1:]
        self.index(top, False)
        new_parent = self._parent_id(str(entry.dn), path_of(entry.dn.parent))
        # Descendants keep their rows and ids; only their DNs and paths change.
        # Paths are rewritten after the top moved so UNIQUE(path) holds throughout.
        self.conn.execute("UPDATE entries SET parent=?, path=?, dn=?, attrs=? WHERE id=?",
                          (new_parent, path_of(entry.dn), str(entry.dn),
                           serialize(entry), top.id))
        self.index(Entry(entry.dn, entry.attributes, top.id), True)
        self.touched.add(top.id)
        for child in descendants:
            dn = child.dn.relative_to(old, entry.dn)
            self.conn.execute("UPDATE entries SET path=?, dn=? WHERE id=?",
                              (path_of(dn), str(dn), child.id))
            self.touched.add(child.id)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.flush()
        self.conn.execute(f"SAVEPOINT {name}")
        touched = set(self.touched)
        try:
            yield
        except BaseException:
            self._off = sys.maxsize
            self._new_index_rows.clear()
            self._single.clear()
            self._shared.clear()
            self._shared_size = 0
            # Rows parked since the savepoint, and the table if made since, go too.
            self._parked = False
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            self._last_parent = (b"", 0)
            self.backend.invalidate(frozenset(self.touched - touched))
            raise
        self.conn.execute(f"RELEASE {name}")
