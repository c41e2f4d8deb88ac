"""The SQLite backend's transaction: one thread's connection, nesting as savepoints.

See https://www.sqlite.org/lang_transaction.html and https://www.sqlite.org/lang_savepoint.html;
the full-text rows it writes are fed to FTS5 at commit (:mod:`cmio.store._sqlitefts`).
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

from cmio.indexing.tables import INDEX_TABLES
from cmio.store._common import Clock
from cmio.store._sqlbase import IndexRows, Row, SqlTransaction
from cmio.store._sqlitediff import OWNED, UpdateRows, index_changes
from cmio.store._sqlitefts import INSERT_TEXT, Backlog, FullText, State
from cmio.store.base import ConflictError, Indexer, StorageFullError, StoreError

__all__ = ["SqliteTransaction", "disk_full"]


@contextlib.contextmanager
def disk_full() -> Iterator[None]:
    """Raise :class:`StorageFullError` for SQLite's ``SQLITE_FULL`` (no space left)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            message = f"the database's disk is full; nothing was stored ({exc})"
            raise StorageFullError(message) from exc
        raise


class SqliteTransaction(SqlTransaction):
    """A transaction on one thread's connection; also its own context manager.

    Opened while the thread's connection is already in a transaction, it nests:
    a write transaction becomes a SAVEPOINT (rolled back alone on error), a read
    transaction simply reads inside the outer one. ``backlog`` (the connection's, shared
    by nested transactions) holds the full-text rows fed to FTS5 at commit
    (:mod:`cmio.store._sqlitefts`).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        indexer: Indexer,
        clock: Clock,
        *,
        readonly: bool,
        writer_lock: int | None = None,
        backlog: Backlog | None = None,
    ) -> None:
        super().__init__(indexer, clock, readonly=readonly)
        self._conn = conn
        self._backlog = backlog if backlog is not None else Backlog(FullText())
        self._mark_before: State | None = None
        self._cur = conn.cursor()
        self._savepoint: str | None = None
        self._nested = False
        self._writer_lock = writer_lock
        self._locked = False

    def _unlock(self) -> None:
        if self._locked and self._writer_lock is not None:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)
            self._locked = False

    def __enter__(self) -> SqliteTransaction:
        try:
            if self._conn.in_transaction:
                self._nested = True
                if not self._readonly:
                    # One name for every level: RELEASE and ROLLBACK TO act on the most
                    # recent savepoint of that name, the innermost, as nesting is LIFO
                    # (https://www.sqlite.org/lang_savepoint.html), and the three statements
                    # are compiled once per connection instead of once per transaction.
                    self._savepoint = "cmio_tx"
                    self._mark_before = self._backlog.state()
                    self._conn.execute(f"SAVEPOINT {self._savepoint}")
            else:
                if not self._readonly and self._writer_lock is not None:
                    # Writers queue on a file lock (woken as soon as it is free) rather
                    # than in SQLite's busy handler, which sleeps with back-off.
                    fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
                    self._locked = True
                self._conn.execute("BEGIN" if self._readonly else "BEGIN IMMEDIATE")
        except BaseException:
            self._closed = True
            self._cur.close()
            self._unlock()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._readonly:
            try:
                self._fire_before_commit()  # e.g. the audit record of this write
            except BaseException as hook_exc:
                self.__exit__(type(hook_exc), hook_exc, hook_exc.__traceback__)
                raise
        self._closed = True
        cur = self._cur
        conn = self._conn
        if self._nested:
            cur.close()
            if self._savepoint is not None and conn.in_transaction:
                if exc_type is not None:
                    conn.execute(f"ROLLBACK TO {self._savepoint}")
                    self._backlog.drop(self._mark_before)
                conn.execute(f"RELEASE {self._savepoint}")
            elif self._savepoint is not None:
                # SQLite rolled the whole transaction back itself (SQLITE_FULL, IOERR,
                # NOMEM): the full-text mark belongs to a transaction that is gone.
                self._backlog.drop()
                if exc_type is None:
                    raise StoreError("the enclosing transaction was rolled back by SQLite")
            return
        try:
            if exc_type is None:
                try:
                    with disk_full():
                        self._backlog.feed(cur)  # nothing to feed without a mark
                        conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._backlog.drop()
                    raise
            else:
                self._backlog.drop()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        finally:
            cur.close()
            self._unlock()

    def _replace_index(self, rtype: str, id: str, index: IndexRows) -> IndexRows:
        """Only the changed rows (:mod:`cmio.store._sqlitediff`): the resource's rows are
        read back (``text_index`` itself, so nothing is fed to FTS5 first) and compared."""
        owned = self._check().execute(OWNED, (rtype, id) * len(INDEX_TABLES)).fetchall()
        return index_changes(UpdateRows(rtype, id, owned), index, self._execute, self._rewrite)

    def _rewrite(self, doc: int, old: str, body: str) -> bool:
        with disk_full():
            return self._backlog.rewrite(self._check(), doc, old, body)

    def _check(self) -> sqlite3.Cursor:
        if self._closed:
            raise StoreError("transaction is finished")
        return self._cur

    def _fetchone(self, sql: str, params: Sequence[Any]) -> Row | None:
        cur = self._check()
        self._backlog.before(cur, sql)
        row: Row | None = cur.execute(sql, params).fetchone()
        return row

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        cur = self._check()
        self._backlog.before(cur, sql)
        return cur.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            with disk_full():
                cur = self._check()
                self._backlog.before(cur, sql)
                return cur.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with disk_full():
                cur = self._check()
                if sql == INSERT_TEXT:
                    self._backlog.before_insert(cur)
                else:
                    self._backlog.before(cur, sql)
                cur.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
