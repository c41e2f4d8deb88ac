"""Embedded SQLite backend (the default store, ``sqlite:///cmio-data/cmio.db``).

WAL journal with ``synchronous=FULL`` so a returned commit survives a power
cut (a thread may trade that for a later :meth:`SqliteRepository.sync`, see
:meth:`SqliteRepository.unsynced_commits`), one connection per thread, ``BEGIN IMMEDIATE`` for write transactions (so
If-Match read-modify-write is serialized) and deferred transactions for reads.
See https://www.sqlite.org/wal.html and https://hl7.org/fhir/R4/http.html.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from cmio.store._common import Clock
from cmio.store._sqlbase import (
    SELECT_CURRENT,
    SELECT_VERSION,
    current_version,
    iter_current_sql,
    past_version,
)
from cmio.store._sqlitebulk import defer_indexes, loading, recover, restore_indexes
from cmio.store._sqlitefts import Backlog, FullText, adopt
from cmio.store._sqlitetx import SqliteTransaction, disk_full
from cmio.store.base import (
    Indexer,
    Repository,
    StoredResource,
    StoreError,
)
from cmio.store.identifiers import DefaultIndexer
from cmio.store.migrations import SchemaTooNewError, latest, migrate

__all__ = ["SCHEMA_VERSION", "SqliteRepository", "SqliteTransaction"]

SCHEMA_VERSION = latest("sqlite")
#: WAL pages after which a commit checkpoints (https://www.sqlite.org/wal.html#ckpt):
#: ~62 MiB of 16 KiB pages, within the wal-index's first hash table (4,062 frames), so a
#: reader still probes one table per page. SQLite's 1,000 made a store of a few GB, whose
#: inserts dirty a page of each of ~20 index B-trees per row, checkpoint every few
#: transactions (rows/CPU figures: docs/benchmarks.md, session 10).
_CHECKPOINT_PAGES = 4000


def _has_table(tx: SqliteTransaction, name: str) -> bool:
    """Whether the database has a table (or virtual table) called ``name``."""
    return tx._fetchone("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)) is not None


class SqliteRepository(Repository):
    """A repository in one SQLite database file.

    Args:
        path: database file; missing parent directories are created.
        indexer: search-index extractor, :class:`DefaultIndexer` by default.
        timeout: seconds to wait for the write lock (``busy_timeout``).
    """

    dialect = "sqlite"
    bulk_defer_min = 1
    """Fewest expected resources for which :meth:`bulk_load` defers index maintenance."""

    def __init__(
        self, path: str | Path, *, indexer: Indexer | None = None, timeout: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._indexer: Indexer = indexer if indexer is not None else DefaultIndexer()
        self._timeout = timeout
        self._clock = Clock()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection, int]] = {}
        self._lock_path = self.path.with_name(self.path.name + ".writer-lock")
        self._extra: set[sqlite3.Connection] = set()
        self._full_text = FullText()
        self._closed = False
        try:
            self._create_schema()
        except BaseException:
            self.close()
            raise

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 268435456")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError("repository is closed")
        conn = self._open()
        lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        thread = threading.current_thread()
        with self._lock:
            for key, (ref, other, other_fd) in list(self._conns.items()):
                alive = ref()
                if alive is None or not alive.is_alive():
                    other.close()
                    os.close(other_fd)
                    del self._conns[key]
            self._conns[id(thread)] = (weakref.ref(thread), conn, lock_fd)
        self._local.lock_fd = lock_fd
        self._local.backlog = Backlog(self._full_text)
        self._local.conn = conn
        self._local.cur = conn.cursor()
        return conn

    def _create_schema(self) -> None:
        """Create or upgrade the schema (:mod:`cmio.store.migrations`) in one transaction."""
        conn = self._connection()
        # Large pages keep typical FHIR resources (1-10 kB) off overflow chains and
        # make bulk loads cheaper; this only takes effect when the file is created.
        conn.execute("PRAGMA page_size = 16384")
        conn.execute("PRAGMA journal_mode = WAL")
        with self._write_transaction(conn) as tx:
            try:
                migrate(tx, "sqlite", lambda name: _has_table(tx, name))
            except SchemaTooNewError as exc:
                raise SchemaTooNewError(f"{self.path}: {exc}") from None
        # a bulk load that died with its indexes deferred: rebuild them first
        recover(conn, self.path)
        adopt(conn)  # full-text rows fed once per transaction (no schema version change)

    def transaction(self) -> SqliteTransaction:
        """A write transaction (``BEGIN IMMEDIATE``); https://www.sqlite.org/lang_transaction.html.

        Outermost write transactions first take an exclusive ``flock`` on a lock file
        beside the database, so writers in several threads or server processes queue
        fairly instead of polling the SQLite lock.
        """
        tx = self._write_transaction(self._connection())
        if self.before_commit is not None:
            tx.before_commit, tx.written = self.before_commit, []
        return tx

    def _write_transaction(self, conn: sqlite3.Connection) -> SqliteTransaction:
        """A write transaction on this thread's connection, its lock file and backlog."""
        return SqliteTransaction(
            conn,
            self._indexer,
            self._clock,
            readonly=False,
            writer_lock=self._local.lock_fd,
            backlog=self._local.backlog,
        )

    def in_transaction(self) -> bool:
        """Whether this thread's connection is inside a transaction."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn is not None and conn.in_transaction

    @contextlib.contextmanager
    def bulk_load(self, expected: int = 0) -> Iterator[None]:
        """Bulk-load mode for this thread's connection (see :mod:`cmio.store._sqlitebulk`).

        The WAL is checkpointed every ~256 MiB instead of ~62 MiB
        (https://www.sqlite.org/wal.html#ckpt) and commits do not wait for fsync
        (``synchronous = NORMAL``: after a crash, power loss included, the store is
        consistent but the last batches may be missing; a re-run adds them). When
        ``expected`` resources are many relative to the store (at least
        ``bulk_defer_min`` and as many as the versions stored), the index tables'
        secondary indexes and the FTS5 trigger are dropped and rebuilt once at the end.
        On a normal exit the rebuild is committed and the write-ahead log fsynced
        before this returns, so everything loaded is durable.
        """
        conn = self._connection()
        with loading(self.path):
            yield from self._bulk_load(conn, expected)

    def _bulk_load(self, conn: sqlite3.Connection, expected: int) -> Iterator[None]:
        deferred = defer_indexes(conn, expected, self.bulk_defer_min)
        self._full_text.paused = deferred  # text_fts is rebuilt at the end
        conn.execute("PRAGMA wal_autocheckpoint = 16384")
        previous = int(conn.execute("PRAGMA synchronous").fetchone()[0])
        conn.execute("PRAGMA synchronous = NORMAL")
        ok = False
        try:
            yield
            ok = True
        finally:
            conn.execute(f"PRAGMA synchronous = {previous}")  # FULL, or NORMAL when unsynced
            conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
            self._full_text.paused = False
            if deferred:
                try:
                    with disk_full():
                        restore_indexes(conn)
                except Exception:
                    if ok:
                        raise  # otherwise the next open of the store rebuilds them
            if ok:
                self._sync_wal()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextlib.contextmanager
    def unsynced_commits(self) -> Iterator[None]:
        """Commits on this thread's connection do not wait for fsync until the block exits.

        Inside the block the connection runs with ``synchronous = NORMAL``
        (https://www.sqlite.org/pragma.html#pragma_synchronous): in WAL mode a commit
        writes its frames to the write-ahead log without an fsync, so it survives a crash
        of the process (the operating system has its pages) but not a power cut until
        :meth:`sync` returns. The store stays consistent either way (checkpoints still
        fsync). Callers must not report such a commit as durable before that ``sync``;
        :class:`cmio.api.writer.GroupCommitWriter` uses this to fsync on another thread
        while it commits the next batch. Other threads' connections keep ``FULL``.
        """
        conn = self._connection()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):  # the repository was closed meanwhile
                conn.execute("PRAGMA synchronous = FULL")

    def sync(self) -> None:
        """Make every commit made so far, by any connection, durable.

        One fsync of the write-ahead log (https://www.sqlite.org/wal.html): it covers
        every frame written before the call, so also the commits made inside
        :meth:`unsynced_commits`. Commits a checkpoint has already moved into the
        database file were fsynced by that checkpoint. Safe to call from any thread.

        Raises:
            OSError: the fsync failed; the commits since the last successful sync may
                not survive a power cut.
        """
        self._sync_wal()

    def _sync_wal(self) -> None:
        """fsync the write-ahead log: every commit in it becomes durable."""
        wal = self.path.with_name(self.path.name + "-wal")
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(wal, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_transaction(self) -> SqliteTransaction:
        """A deferred, read-only transaction that never waits for writers (WAL snapshot)."""
        conn = self._connection()
        return SqliteTransaction(
            conn, self._indexer, self._clock, readonly=True, backlog=self._local.backlog
        )

    def read(self, type: str, id: str) -> StoredResource:
        """Read the current version with one indexed lookup, no explicit transaction.

        See https://hl7.org/fhir/R4/http.html#read.
        """
        self._connection()
        row = self._local.cur.execute(SELECT_CURRENT, (type, id)).fetchone()
        return current_version(type, id, row, None if row is None else row[3])

    def vread(self, type: str, id: str, version: int) -> StoredResource:
        """Read one version with one indexed lookup (https://hl7.org/fhir/R4/http.html#vread)."""
        self._connection()
        row = self._local.cur.execute(SELECT_VERSION, (type, id, version)).fetchone()
        return past_version(type, id, version, row, None if row is None else row[3])

    def iter_current(
        self, types: Sequence[str] | None = None, since: str | None = None
    ) -> Iterator[StoredResource]:
        """Stream current, non-deleted resources from one snapshot, in chunks.

        Uses a dedicated connection so the caller may write while iterating.
        See https://hl7.org/fhir/uv/bulkdata/export.html.
        """
        query = iter_current_sql(types, since)
        if query is None:
            return
        sql, params = query
        if self._closed:
            raise StoreError("repository is closed")
        conn = self._open()
        with self._lock:
            self._extra.add(conn)
        try:
            conn.execute("BEGIN")
            cur = conn.execute(sql, params)
            while rows := cur.fetchmany(1000):
                for r in rows:
                    yield StoredResource(r[0], r[1], r[2], r[3], False, r[4])
            cur.close()
        finally:
            with self._lock:
                self._extra.discard(conn)
            conn.close()

    def close(self) -> None:
        """Close every thread's connection; the repository cannot be used afterwards."""
        with self._lock:
            self._closed = True
            conns = [conn for _, conn, _ in self._conns.values()] + list(self._extra)
            fds = [fd for _, _, fd in self._conns.values()]
            self._conns.clear()
            self._extra.clear()
        for conn in conns:
            conn.close()
        for fd in fds:
            os.close(fd)
        self._local = threading.local()
