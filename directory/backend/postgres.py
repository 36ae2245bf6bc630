"""The PostgreSQL backend: several certdir front ends on one database
(DESIGN.md, "Storage"; `storage.url: postgresql://...`).

- The same model as SQLite: `entries` (id, parent, path, dn, attrs), the
  path a BYTEA with a unique B-tree index, so a subtree is one range of it
  (paths.py); `idx` (attr, key, id) for the indexed attributes; `meta`.
  Roots (naming contexts) have a NULL parent and every other parent is a
  foreign key: the database itself refuses an entry below a deleted one
  and the deletion of an entry that still has children, whatever front
  end asked.
- B-tree keys must fit in a third of a page: index keys are stored cut to
  `MAX_KEY` bytes, and queries cut theirs the same way, so an index query
  still gives a superset of the matches (the caller evaluates the filter);
  a DN whose path is longer than `MAX_PATH` is refused.
- Reads (`get`, `search`, `has_children`, `count`, `estimate`) run on the
  caller's thread on one autocommit connection, as server-side prepared
  statements with binary results. `reading()` is one REPEATABLE READ
  snapshot of the application's tables. When the database server drops
  the connections (a restart, a failover), the next `refresh()` (the start
  of every operation) opens a new read connection, and the next write
  transaction a new write connection when its BEGIN fails. A connection
  lost after BEGIN fails its transaction (the COMMIT may have happened, so
  it is never run twice); the next one opens a new connection.
- Writes run on a second connection in one transaction each. `Transaction.get`
  and `subtree` lock the rows they return (SELECT ... FOR UPDATE), and a
  new entry's parent is locked FOR KEY SHARE, so two front ends changing
  one entry wait for each other instead of losing an update, and an entry
  cannot be added below one being deleted or renamed. A rename checks that
  no entry was added below the old DN while it waited. A deadlock or
  serialization failure between front ends is LDAP busy (51): the client
  may retry. COMMIT returns only when the commit record is flushed
  (synchronous_commit, PostgreSQL's default), so an acknowledged write
  survives a kill -9 of the front end, and of the database server.
- The application's tables (`Tables`, written in the portable dialect of
  `Records`, translated by pg_records.py) are created at open when their
  statements changed (a hash in `meta`), and the index is rebuilt when
  the indexed attributes changed; both under an advisory lock, so front
  ends starting together do it once. So are the index statistics
  (index_stats.py, the same as SQLite's): counted again at open when the
  directory's size drifted, then kept in memory, so an Equal estimate
  costs no round trip.
- A transaction that added `ANALYZE_AFTER` entries or more (an LDIF
  import) gathers the planner's statistics after its commit, so the next
  searches are not planned as if the tables were empty.

Caches across front ends. Each front end caches decoded entries by id.
Every write transaction that changed entries increments the one row of
`generation` and, in the same transaction, NOTIFYs "<generation> <ids>"
("<generation> everything" when the ids do not fit a payload; both in
pg_changes.py). A listener thread queues the notifications; `refresh()`,
at the start of every operation, reads the committed generation G,
forgets the ids of every
queued generation in order, and drops the whole cache when some
generation up to G is missing from the queue (not delivered yet, or lost
with the listener's connection). This is correct because:
- the generation row is locked by each writer until it commits, so
  generations are numbered in commit order with no gaps, and a commit
  acknowledged before `refresh()` began is included in the G it reads;
- PostgreSQL delivers a notification only after its transaction is
  visible to new snapshots, and the reactor thread applies invalidations
  and reads entries one after the other: a copy cached before a commit is
  forgotten by the first `refresh()` that knows the commit's generation,
  and a copy read after the invalidation was applied is read after the
  commit;
- every generation from the last checked one to G is accounted for,
  either by its ids or by dropping everything.
- a row read before an invalidation but decoded after it (a chunk of a
  scan, read before its search yielded) goes to that search only: an
  entry is cached only when the cache's epoch (cache.py) has not moved
  since its row was read, so every cached copy was read after the last
  invalidation that concerned it.
Commits of this front end's own writer are queued the same way as soon as
they return, and the writer also forgets their ids before it acknowledges
them (writer.py).

Driver: psycopg 3 (sync, prepared, binary), not asyncpg. The Backend
protocol is synchronous on the reactor thread; asyncpg would need the DSA,
the operations and the overlays to become asynchronous, for no gain
measured here: in one process against a local PostgreSQL 15 on this
2-core machine (medians of 2,000 round trips, three runs, while other
work kept the load average near 11), a primary-key SELECT of one entry's
600-byte blob took 30 µs with psycopg 3 (60 in one run) and 28-39 µs with
asyncpg; a 100-row fetch 111-118 µs and 101-103 µs.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from directory.backend import (
    After,
    EntryRefused,
    Equal,
    IndexQuery,
    NewEntry,
    Param,
    Prefix,
    Range,
    Tables,
    candidates,
    index_stats,
)
from directory.backend.candidates import SCAN_CHUNK, ScanRow, common_ids, scan
from directory.backend.index_keys import GRAM, IndexKeys, IndexSpec
from directory.backend.index_stats import Statistics
from directory.backend.paths import after, path_of
from directory.backend.pg_bulk import Bulk
from directory.backend.pg_changes import Changed, Listener, announce
from directory.backend.pg_nodes import NodeNumber
from directory.backend.pg_records import PostgresRecords, ddl
from directory.backend.postings import Gathering, LeftOut, Postings, places
from directory.backend.sqlite import INDEX_BATCH, footprint
from directory.entry import Entry, deserialize, serialize
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]

SCHEMA_SQL = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " parent BIGINT REFERENCES entries(id),"
    " path BYTEA NOT NULL UNIQUE,"
    " dn TEXT NOT NULL,"
    " attrs BYTEA NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_parent ON entries(parent)",
    "CREATE TABLE IF NOT EXISTS idx ("
    " attr TEXT NOT NULL, key BYTEA NOT NULL, id BIGINT NOT NULL,"
    " PRIMARY KEY (attr, key, id))",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS generation (n BIGINT NOT NULL)",
    "INSERT INTO generation SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM generation)",
    "CREATE TABLE IF NOT EXISTS idx_stats ("
    " attr TEXT NOT NULL, key BYTEA NOT NULL, entries BIGINT NOT NULL,"
    " PRIMARY KEY (attr, key))",
    "CREATE TABLE IF NOT EXISTS idx_unkept ("
    " attr TEXT NOT NULL, key BYTEA NOT NULL, PRIMARY KEY (attr, key))",
)
# The last table SCHEMA_SQL creates: when it exists, so does every other.
NEWEST_TABLE = "idx_unkept"

# Taken by whoever creates tables or rebuilds the index ("certdir" in ASCII).
OPEN_LOCK = 0x63657274646972
# A B-tree entry may hold about 2,700 bytes.
MAX_KEY = 1024
MAX_PATH = 2000
CONNECT_TIMEOUT = 10
# From this many buffered index rows on, `flush` copies them (bulk loads).
COPY_ROWS = 1000
# Where copied index rows wait for their INSERT ... ON CONFLICT (this session's own).
SCRATCH_INDEX = ("CREATE TEMP TABLE IF NOT EXISTS idx_new"
                 " (attr TEXT NOT NULL, key BYTEA NOT NULL, id BIGINT NOT NULL)")
# A transaction adding this many entries is a bulk load: statistics are
# gathered at once.
ANALYZE_AFTER = 1000


def connect(url: str) -> Connection:
    """An autocommit connection; a URL without connect_timeout gets one."""
    if "connect_timeout" not in conninfo_to_dict(url):
        url = make_conninfo(url, connect_timeout=CONNECT_TIMEOUT)
    return psycopg.connect(url, autocommit=True)


def _stored(rows: Iterable[tuple[str, bytes]]) -> set[tuple[str, bytes]]:
    return {(attr, key[:MAX_KEY]) for attr, key in rows}


def _where(query: Equal | Range) -> tuple[str, tuple[Param, ...]]:
    """The index rows of a key, of a prefix (a key range), of a presence
    (the attribute's), or after a key."""
    if isinstance(query, Equal):
        return "attr = %s AND key = %s", (query.attribute, query.key[:MAX_KEY])
    if isinstance(query, Prefix):
        prefix = query.prefix[:MAX_KEY]
        return "attr = %s AND key >= %s AND key < %s", (
            query.attribute, prefix, prefix + b"\xff\xff\xff\xff")
    if isinstance(query, After):
        return "attr = %s AND key > %s", (query.attribute, query.key[:MAX_KEY])
    return "attr = %s", (query.attribute,)


class PostgresBackend:
    def __init__(self, url: str, schema: Schema, indexed: Iterable[str | IndexSpec],
                 cache_entries: int = 200_000, cache_bytes: int = 512 * 1024 * 1024,
                 tables: Tables = ()) -> None:
        self.schema = schema
        self._keys = IndexKeys(schema, indexed)
        self.indexed = self._keys.names
        self._cache: BoundedCache[int, Entry] = BoundedCache(cache_bytes, cache_entries)
        self._paths: BoundedCache[bytes, int] = BoundedCache(cache_bytes // 4, cache_entries)
        self._url = url
        self._changes: deque[tuple[int, Changed]] = deque()
        self._pending: dict[int, Changed] = {}
        self._node: NodeNumber | None = None
        opened: list[Connection] = []
        try:
            self._writer = connect(url)
            opened.append(self._writer)
            self._reader = connect(url)
            opened.append(self._reader)
            self._open(tables)
            self._listener = Listener(lambda: connect(url), self._changes)
        except BaseException:
            for conn in opened:
                conn.close()
            raise
        self._checked = self._generation()
        self._size = self._entries()
        with self.reading() as records:
            self._statistics = Statistics.read(records, MAX_KEY)

    def _open(self, tables: Tables) -> None:
        """The backend's and the application's tables and the index, made
        current by whichever front end takes the lock first."""
        wanted_tables = hashlib.sha256("\0".join(tables).encode()).hexdigest()
        wanted_index = ",".join(sorted(self.indexed)) + f";{GRAM}-grams"
        with self.transaction() as txn:
            conn = txn.conn
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (OPEN_LOCK,))
            # CREATE INDEX locks its table even when the index exists.
            created = conn.execute("SELECT to_regclass(%s)", (NEWEST_TABLE,)).fetchone()
            if created is None or created[0] is None:
                for statement in SCHEMA_SQL:
                    conn.execute(statement)
            if _meta(conn, "tables") != wanted_tables:
                for statement in tables:
                    conn.execute(ddl(statement))
                _set_meta(conn, "tables", wanted_tables)
            if _meta(conn, "indexes") != wanted_index:
                conn.execute("DELETE FROM idx")
                for entry_id, dn, blob in conn.execute("SELECT id, dn, attrs FROM entries",
                                                       binary=True).fetchall():
                    txn.index(deserialize(self.schema, dn, blob, entry_id), True)
                txn.flush()
                _set_meta(conn, "indexes", wanted_index)
                index_stats.forget(txn.records)
            index_stats.recount(txn.records, _highest_id(conn))

    def index_rows(self, attributes: Mapping[str, tuple[bytes, ...]]) -> set[tuple[str, bytes]]:
        """The (attribute, key) index rows of indexed attribute values, as
        every backend computes them."""
        return self._keys.rows(attributes)

    def gather(self, attributes: Mapping[str, tuple[bytes, ...]], place: int,
               into: Gathering) -> None:
        self._keys.gather(attributes, place, into)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._reader.execute(sql, params, prepare=True, binary=True).fetchall()

    def _generation(self) -> int:
        return int(self._read("SELECT n FROM generation")[0][0])

    def _entries(self) -> int:
        return _highest_id(self._reader)

    def _entry(self, epoch: int, entry_id: int, dn: str, blob: bytes) -> Entry:
        """The entry of a row its statement read at the cache's `epoch`."""
        entry = self._cache.get(entry_id)
        if entry is None:
            entry = deserialize(self.schema, dn, blob, entry_id)
            if epoch == self._cache.epoch:
                self._cache.put(entry_id, entry, footprint(entry, blob))
        return entry

    @contextmanager
    def reading(self) -> Iterator[PostgresRecords]:
        conn = self._reader
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield PostgresRecords(conn)
            return
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield PostgresRecords(conn)
        finally:
            conn.execute("COMMIT")

    def refresh(self) -> bool:
        """Forget what commits up to the current generation changed (module
        docstring); True when anything was committed since the last call.
        A read connection the database server dropped is opened again here,
        before the operation reads anything."""
        try:
            current = self._generation()
        except psycopg.OperationalError:
            if not self._reader.broken:
                raise
            self._reader = connect(self._url)
            current = self._generation()
        pending = self._pending
        changes = self._changes
        while changes:
            generation, ids = changes.popleft()
            if generation > self._checked:
                pending[generation] = ids
        before = self._checked
        while self._checked + 1 in pending:
            self._checked += 1
            ids = pending.pop(self._checked)
            if ids is None:
                self._drop()
            else:
                self.invalidate(ids)
        if self._checked < current:
            self._drop()
            self._checked = current
            for generation in [g for g in pending if g <= current]:
                del pending[generation]
        if self._checked == before:
            return False
        self._size = self._entries()
        return True

    def _drop(self) -> None:
        self._cache.clear()
        self._paths.clear()

    def _by_ids(self, ids: Iterable[int]) -> list[Entry]:
        cached = {i: e for i in ids if (e := self._cache.get(i)) is not None}
        missing = [i for i in ids if i not in cached]
        if missing:
            epoch = self._cache.epoch
            for row in self._read("SELECT id, dn, attrs FROM entries WHERE id = ANY(%s)",
                                  (missing,)):
                cached[row[0]] = self._entry(epoch, *row)
        return [cached[i] for i in sorted(cached)]

    def get(self, dn: DN) -> Entry | None:
        if not dn:
            return None
        path = path_of(dn)
        # A cached entry is current (changes evict it), so if the one last
        # seen at this path still has this DN, it is the entry here.
        entry = self._cache.get(self._paths.get(path) or 0)
        if entry is not None and entry.dn == dn:
            return entry
        rows = self._read("SELECT id, dn, attrs FROM entries WHERE path = %s", (path,))
        if not rows:
            return None
        self._paths.put(path, rows[0][0], len(path) + 100)
        return self._entry(self._cache.epoch, *rows[0])

    def has_children(self, dn: DN) -> bool:
        return _has_children(self._reader, dn)

    def count(self) -> int:
        return int(self._read("SELECT count(*) FROM entries")[0][0])

    def search(self, base: DN, scope: Scope, query: IndexQuery | None) -> Iterator[Entry]:
        return candidates.search(self, base, scope, query)

    def _equal_entries(self, query: Equal) -> list[Entry]:
        rows = self._read(
            "SELECT e.id, e.dn, e.attrs FROM idx i JOIN entries e ON e.id = i.id "
            "WHERE i.attr = %s AND i.key = %s ORDER BY e.id",
            (query.attribute, query.key[:MAX_KEY]))
        epoch = self._cache.epoch
        return [self._entry(epoch, *row) for row in rows]

    def _ids(self, queries: Sequence[Equal | Range]) -> list[int]:
        return [row[0] for row in self._read(*common_ids(queries, _where))]

    def _children(self, base_path: bytes) -> Iterator[Entry]:
        """The entries one level below `base_path`, in path order (the path
        index orders them; the parent index does not order a parent's
        children); below the root, the naming contexts."""
        if not base_path:
            epoch = self._cache.epoch
            for row in self._read("SELECT id, dn, attrs FROM entries WHERE parent IS NULL"):
                yield self._entry(epoch, *row)
            return
        found = self._read("SELECT id FROM entries WHERE path = %s", (base_path,))
        if not found:
            return
        parent = found[0][0]

        def read(last: bytes | None) -> list[ScanRow]:
            return self._read(
                "SELECT id, dn, attrs, path FROM entries WHERE path > %s AND path < %s "
                "AND parent = %s ORDER BY path LIMIT %s",
                (base_path if last is None else last, after(base_path), parent, SCAN_CHUNK))

        for rows in scan(read):
            epoch = self._cache.epoch
            for entry_id, dn, blob, _ in rows:
                yield self._entry(epoch, entry_id, dn, blob)

    def _subtree(self, base_path: bytes, with_base: bool) -> Iterator[Entry]:

        def read(last: bytes | None) -> list[ScanRow]:
            above = ">=" if with_base and last is None else ">"
            return self._read(
                f"SELECT id, dn, attrs, path FROM entries WHERE path {above} %s AND path < %s "
                "ORDER BY path LIMIT %s",
                (base_path if last is None else last, after(base_path), SCAN_CHUNK))

        for rows in scan(read):
            epoch = self._cache.epoch
            for entry_id, dn, blob, _ in rows:
                yield self._entry(epoch, entry_id, dn, blob)

    def estimate(self, query: IndexQuery) -> int:
        """About the entries `query` selects (index_stats.py)."""
        return self._statistics.estimate(query, self._size, self._count)

    def _count(self, query: Range, limit: int) -> int:
        where, params = _where(query)
        rows = self._read(f"SELECT count(*) FROM (SELECT 1 FROM idx WHERE {where} LIMIT %s) s",
                          (*params, limit))
        return int(rows[0][0])

    @contextmanager
    def _begun(self) -> Iterator[Connection]:
        """The writer's connection in a new transaction. A connection the
        database server dropped (a restart, a terminated session) shows at
        BEGIN, before anything of the transaction was sent: it is replaced
        and BEGIN sent on the new one. A failure after BEGIN is the caller's
        error, never retried: its COMMIT may have happened."""
        with ExitStack() as begun:
            try:
                begun.enter_context(self._writer.transaction())
            except psycopg.OperationalError:
                # Closed, also when the last attempt to open it failed.
                if not self._writer.closed:
                    raise
                self._writer = connect(self._url)
                begun.enter_context(self._writer.transaction())
            yield self._writer

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[PostgresTransaction]:
        # A bulk load is written like any other (pg_bulk.py batches its inserts).
        touched: set[int] = set()
        generation = 0
        try:
            with self._begun() as conn:
                txn = PostgresTransaction(self, conn)
                touched = txn.touched
                yield txn
                txn.flush()
                if txn.touched:
                    generation = announce(conn, frozenset(txn.touched))
        except BaseException:
            self.invalidate(frozenset(touched))
            raise
        if generation:
            self._changes.append((generation, frozenset(txn.touched)))
        if txn.inserted >= ANALYZE_AFTER:
            # Plans made before autovacuum gets to a bulk load's rows would
            # scan where an index serves.
            conn.execute("ANALYZE entries, idx")

    def invalidate(self, ids: frozenset[int]) -> None:
        for entry_id in ids:
            self._cache.forget(entry_id)

    def node(self, local: int) -> int:
        # Front ends on other machines share the database: it gives the number, from `local` up.
        if self._node is None:
            self._node = NodeNumber(connect(self._url), local)
        return self._node.number

    def close(self) -> None:
        if self._node is not None:
            self._node.release()
        self._listener.close()
        self._reader.close()
        self._writer.close()


def _meta(conn: Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE name = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                 "SET value = excluded.value", (name, value))


def _highest_id(conn: Connection) -> int:
    """The directory's size, taken to be its highest id: never less than
    the number of entries, and read from the primary key's end."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM entries", prepare=True).fetchone()
    assert row is not None
    return int(row[0])


def _has_children(conn: Connection, dn: DN) -> bool:
    if not dn:
        return conn.execute("SELECT 1 FROM entries LIMIT 1", prepare=True).fetchone() is not None
    path = path_of(dn)
    return conn.execute("SELECT 1 FROM entries WHERE path > %s AND path < %s LIMIT 1",
                        (path, after(path)), prepare=True).fetchone() is not None



def _columns(rows: Iterable[tuple[str, bytes]]) -> tuple[list[str], list[bytes]]:
    attrs: list[str] = []
    keys: list[bytes] = []
    for attr, key in rows:
        attrs.append(attr)
        keys.append(key)
    return attrs, keys


def _checked_path(dn: DN | str, path: bytes) -> bytes:
    if len(path) > MAX_PATH:
        raise LDAPError(ResultCode.ADMIN_LIMIT_EXCEEDED,
                        f"{dn}: DN too long for the PostgreSQL index")
    return path


class PostgresTransaction:
    """A write transaction on the writer connection; sees its own writes
    and locks the rows it reads."""

    def __init__(self, backend: PostgresBackend, conn: Connection) -> None:
        self.backend = backend
        self.conn = conn
        self.records = PostgresRecords(conn)
        self.touched: set[int] = set()
        self.inserted = 0
        self._last_parent: tuple[bytes, int] = (b"", 0)
        # Index rows of new entries wait here until the next flush; nothing
        # reads the index through a write transaction.
        self._new_index_rows: list[tuple[str, bytes, int]] = []
        # New entries below new entries wait here until read or flushed.
        self._bulk = Bulk(conn, self._stored)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        return self.conn.execute(sql, params, prepare=True, binary=True)

    def _row_to_entry(self, row: tuple[Any, ...]) -> Entry:
        entry_id, dn, blob = row
        return deserialize(self.backend.schema, dn, blob, entry_id)

    def get(self, dn: DN) -> Entry | None:
        if not dn:
            return None
        self._bulk.write()
        row = self._execute("SELECT id, dn, attrs FROM entries WHERE path = %s FOR UPDATE",
                            (path_of(dn),)).fetchone()
        return None if row is None else self._row_to_entry(row)

    def has_children(self, dn: DN) -> bool:
        self._bulk.write()
        return _has_children(self.conn, dn)

    def subtree(self, dn: DN) -> Iterator[Entry]:
        self._bulk.write()
        path = path_of(dn)
        rows = self._execute(
            "SELECT id, dn, attrs FROM entries WHERE path >= %s AND path < %s "
            "ORDER BY path FOR UPDATE", (path, after(path))).fetchall()
        for row in rows:
            yield self._row_to_entry(row)

    def find(self, attribute: str, key: bytes) -> Entry | None:
        self.flush()
        row = self._execute(
            "SELECT e.id, e.dn, e.attrs FROM idx i JOIN entries e ON e.id = i.id "
            "WHERE i.attr = %s AND i.key = %s ORDER BY e.id LIMIT 1 FOR UPDATE OF e",
            (attribute, key)).fetchone()
        return None if row is None else self._row_to_entry(row)

    def _parent_id(self, dn: str, parent: bytes | None) -> int | None:
        if not parent:
            return None
        # Bulk loads add many children to one parent in a row.
        if self._last_parent[0] == parent:
            return self._last_parent[1]
        if self._bulk.waits(parent):
            self._bulk.write()
        row = self._execute("SELECT id FROM entries WHERE path = %s FOR KEY SHARE",
                            (parent,)).fetchone()
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
            attrs, keys = _columns(_stored(rows))
            self._execute("DELETE FROM idx WHERE id = %s AND (attr, key) IN "
                          "(SELECT * FROM unnest(%s::text[], %s::bytea[]))",
                          (entry.id, attrs, keys))

    def _queue_index(self, entry_id: int, rows: Iterable[tuple[str, bytes]]) -> None:
        self._new_index_rows.extend((attr, key, entry_id) for attr, key in _stored(rows))
        if len(self._new_index_rows) >= INDEX_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the buffered index rows, in key order (each B-tree page
        touched once): a few in one statement, many (a bulk load) by COPY
        into a scratch table and from there into `idx` in one statement,
        some ten times faster than a statement per row."""
        self._bulk.write()
        rows = self._new_index_rows
        if not rows:
            return
        rows.sort()
        if len(rows) < COPY_ROWS:
            attrs, keys, ids = (list(column) for column in zip(*rows, strict=True))
            self._execute("INSERT INTO idx SELECT * FROM "
                          "unnest(%s::text[], %s::bytea[], %s::bigint[]) ON CONFLICT DO NOTHING",
                          (attrs, keys, ids))
        else:
            self._execute(SCRATCH_INDEX)
            with self.conn.cursor() as cursor, cursor.copy(
                    "COPY idx_new (attr, key, id) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "bytea", "int8"])
                for row in rows:
                    copy.write_row(row)
            self._execute("INSERT INTO idx SELECT attr, key, id FROM idx_new"
                          " ORDER BY attr, key, id ON CONFLICT DO NOTHING")
            self._execute("TRUNCATE idx_new")
        rows.clear()

    def add(self, entry: Entry, *, root: bool = False) -> None:
        """Store a new entry; a `root` entry (a naming context) has no parent."""
        dn = entry.dn
        self.insert(str(dn), path_of(dn), None if root else path_of(dn.parent),
                    serialize(entry), self.backend.index_rows(entry.attributes))

    def insert(self, dn: str, path: bytes, parent: bytes | None, blob: bytes,
               index_rows: Iterable[tuple[str, bytes]]) -> None:
        """Store a new entry already serialized, below the entry at path
        `parent` (None: a naming context, which has no parent)."""
        parent_id = self._parent_id(dn, parent)
        path = _checked_path(dn, path)
        if self._bulk.add(parent_id, path, dn, blob, index_rows, self._exists):
            return
        row = self._execute(
            "INSERT INTO entries (parent, path, dn, attrs) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (path) DO NOTHING RETURNING id",
            (parent_id, path, dn, blob)).fetchone()
        if row is None:
            raise LDAPError(ResultCode.ENTRY_ALREADY_EXISTS, f"entry {dn} already exists")
        self._bulk.created(int(row[0]), path)
        self._stored(int(row[0]), index_rows)

    def insert_many(self, entries: Sequence[NewEntry], postings: Postings) -> None:
        """As `insert` each: the batches of `pg_bulk` and COPY already write
        a bulk load's entries and rows a thousand at a time."""
        rows: list[list[tuple[str, bytes]]] = [[] for _ in entries]
        for attribute, keys in postings.items():
            for key, held in keys.items():
                for place in places(held):
                    rows[place].append((attribute, key))
        for place, (entry, index_rows) in enumerate(zip(entries, rows, strict=True)):
            try:
                self.insert(*entry, index_rows)
            except LDAPError as e:
                raise EntryRefused(place, e) from None

    def left_out(self) -> LeftOut:
        """No keys: a bulk load here keeps every key."""
        return {}

    def _stored(self, entry_id: int, index_rows: Iterable[tuple[str, bytes]]) -> None:
        # Touched too, so that other front ends learn something was added
        # (a referral object, say) and drop what they derived from entries.
        self.touched.add(entry_id)
        self.inserted += 1
        self._queue_index(entry_id, index_rows)

    def _exists(self, path: bytes) -> bool:
        return self._execute("SELECT 1 FROM entries WHERE path = %s",
                             (path,)).fetchone() is not None

    def _existing(self, dn: DN) -> Entry:
        old = self.get(dn)
        if old is None:
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}")
        return old

    def replace(self, entry: Entry) -> None:
        old = self._existing(entry.dn)
        self.index(old, False)
        self._execute("UPDATE entries SET attrs = %s WHERE id = %s", (serialize(entry), old.id))
        self.index(Entry(entry.dn, entry.attributes, old.id), True)
        self.touched.add(old.id)

    def delete(self, dn: DN) -> None:
        self._last_parent = (b"", 0)
        old = self._existing(dn)
        self.index(old, False)
        try:
            # Its own savepoint: a refusal leaves the transaction usable.
            with self.conn.transaction():
                self._execute("DELETE FROM entries WHERE id = %s", (old.id,))
        except errors.ForeignKeyViolation:
            raise LDAPError(ResultCode.NOT_ALLOWED_ON_NON_LEAF,
                            f"{dn} has subordinates") from None
        self.touched.add(old.id)

    def rename(self, old: DN, entry: Entry) -> None:
        self._last_parent = (b"", 0)
        self._bulk.forget()
        moving = list(self.subtree(old))
        if not moving:
            raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {old}")
        top, descendants = moving[0], moving[1:]
        self.index(top, False)
        new_parent = self._parent_id(str(entry.dn), path_of(entry.dn.parent))
        # Descendants keep their rows and ids; only their DNs and paths change.
        # Paths are rewritten after the top moved so UNIQUE(path) holds throughout.
        new_path = _checked_path(entry.dn, path_of(entry.dn))
        self._execute("UPDATE entries SET parent = %s, path = %s, dn = %s, attrs = %s "
                      "WHERE id = %s",
                      (new_parent, new_path, str(entry.dn), serialize(entry), top.id))
        self.index(Entry(entry.dn, entry.attributes, top.id), True)
        self.touched.add(top.id)
        moved = []
        for child in descendants:
            dn = child.dn.relative_to(old, entry.dn)
            moved.append((_checked_path(dn, path_of(dn)), str(dn), child.id))
            self.touched.add(child.id)
        with self.conn.cursor() as cursor:
            cursor.executemany("UPDATE entries SET path = %s, dn = %s WHERE id = %s", moved)
        old_path = path_of(old)
        if old_path != new_path and self._execute(
                "SELECT 1 FROM entries WHERE path >= %s AND path < %s LIMIT 1",
                (old_path, after(old_path))).fetchone() is not None:
            raise LDAPError(ResultCode.BUSY, f"an entry was added below {old} meanwhile")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self.flush()
        touched = set(self.touched)
        try:
            with self.conn.transaction():
                yield
                self._bulk.write()
        except BaseException as e:
            self._new_index_rows.clear()
            self._bulk.rolled_back()
            self._last_parent = (b"", 0)
            self.backend.invalidate(frozenset(self.touched - touched))
            if isinstance(e, errors.TransactionRollback):
                raise LDAPError(ResultCode.BUSY, "the entry is being changed by another "
                                "front end; try again") from None
            raise
