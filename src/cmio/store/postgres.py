"""PostgreSQL backend (psycopg 3 with a connection pool).

The resource JSON is kept twice in the current-version table: ``data`` holds
the exact text we serialized (returned byte for byte) and ``body`` is a
generated JSONB column for server-side queries. Writes lock the current row
with ``SELECT ... FOR UPDATE`` so If-Match read-modify-write is race-free under
READ COMMITTED. See https://www.postgresql.org/docs/15/explicit-locking.html
and https://hl7.org/fhir/R4/http.html#concurrency.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from cmio.indexing.tables import INDEX_TABLES
from cmio.store._common import Clock
from cmio.store._sqlbase import (
    ARCHIVE_DATA,
    DELETE_INDEX,
    SELECT_CURRENT,
    SELECT_VERSION,
    Row,
    SqlTransaction,
    archive_args,
    current_version,
    iter_current_sql,
    past_version,
)
from cmio.store.base import (
    ConflictError,
    Indexer,
    Repository,
    StoredResource,
    StoreError,
)
from cmio.store.identifiers import DefaultIndexer
from cmio.store.migrations import latest, migrate

__all__ = ["SCHEMA_VERSION", "PostgresRepository", "PostgresTransaction"]

SCHEMA_VERSION = latest("postgres")
# Any constant works; it only has to be the same for every cmio process.
_SCHEMA_LOCK = 0x636D696F
_AUDIT_LOCK = 0x636D6961  # the audit chain's head


def _has_table(tx: PostgresTransaction, name: str) -> bool:
    """Whether the session's current schema has a table (or index) called ``name``."""
    found = tx._fetchone(
        "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = ?",
        (name,),
    )
    return found is not None


def _pg(sql: str) -> str:
    """Rewrite the shared ``?`` placeholders to psycopg's ``%s``."""
    return sql.replace("?", "%s")


class PostgresTransaction(SqlTransaction):
    """A transaction on one pooled connection."""

    for_update = " FOR UPDATE"
    dialect = "postgres"
    audit_lock = f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK})"

    def __init__(
        self, cur: psycopg.Cursor[Row], indexer: Indexer, clock: Clock, *, readonly: bool
    ) -> None:
        super().__init__(indexer, clock, readonly=readonly)
        self._cur = cur

    def _check(self) -> psycopg.Cursor[Row]:
        if self._closed:
            raise StoreError("transaction is finished")
        return self._cur

    def _fetchone(self, sql: str, params: Sequence[Any]) -> Row | None:
        return self._check().execute(_pg(sql), params).fetchone()

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._check().execute(_pg(sql), params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            return self._check().execute(_pg(sql), params).rowcount
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(str(exc)) from exc

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._check().executemany(_pg(sql), rows)
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(str(exc)) from exc

    @contextlib.contextmanager
    def _batch(self) -> Iterator[object]:
        """Pipeline the statements: one round trip instead of one per statement."""
        try:
            with self._check().connection.pipeline() as pipeline:
                yield pipeline
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(str(exc)) from exc

    def _fetch_rows(self, rtype: str, ids: list[str]) -> list[Row]:
        # A LATERAL primary-key lookup per id: the plan cannot go wrong on a freshly
        # loaded table without statistics (an IN list may scan every row of the type).
        return self._check().execute(_SELECT_MANY_LOCKED, (ids, rtype)).fetchall()

    def _bulk_write(
        self,
        current: list[Row],
        history: list[Row],
        stale: list[tuple[str, str]],
        index: dict[str, list[Row]],
    ) -> None:
        # Array parameters and COPY: per-row statement overhead would dominate.
        cur = self._check()
        try:
            if stale:
                cur.executemany(_pg(ARCHIVE_DATA), [archive_args(t, i) for t, i in stale])
            columns = [list(column) for column in zip(*current, strict=True)]
            cur.execute(_UPSERT_MANY, columns)
            with cur.copy(_COPY_HISTORY) as copy:
                for row in history:
                    copy.write_row(row)
            if stale:
                for delete in DELETE_INDEX.values():
                    cur.executemany(_pg(delete), stale)
            for table, rows in index.items():
                with cur.copy(_copy_index(table)) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(str(exc)) from exc

    def _data_in(self, data: bytes) -> Any:
        return data.decode()

    def _data_out(self, value: Any) -> bytes | None:
        return None if value is None else value.encode()  # type: ignore[no-any-return]


class PostgresRepository(Repository):
    """A repository in a PostgreSQL database (tables in the session's ``search_path``).

    Args:
        url: libpq connection URL or conninfo string.
        indexer: search-index extractor, :class:`DefaultIndexer` by default.
        pool_size: maximum number of pooled connections.
        timeout: seconds to wait for a free pooled connection.
    """

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        indexer: Indexer | None = None,
        pool_size: int = 8,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self._indexer: Indexer = indexer if indexer is not None else DefaultIndexer()
        self._clock = Clock()
        self._cursor_names = itertools.count(1)
        self._pinned = threading.local()  # this thread's connection inside atomic()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            timeout=timeout,
            open=False,
            name="cmio-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _create_schema(self) -> None:
        """Create or upgrade the schema (:mod:`cmio.store.migrations`) in one transaction,
        under an advisory lock so concurrent server processes migrate once."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            tx = PostgresTransaction(cur, self._indexer, self._clock, readonly=False)
            migrate(tx, "postgres", lambda name: _has_table(tx, name))

    def _connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """This thread's :meth:`atomic` connection, else a pooled one."""
        pinned: psycopg.Connection[Any] | None = getattr(self._pinned, "conn", None)
        return contextlib.nullcontext(pinned) if pinned is not None else self._pool.connection()

    def in_transaction(self) -> bool:
        """Whether this thread is inside :meth:`atomic` (a new transaction would nest in it)."""
        return getattr(self._pinned, "conn", None) is not None

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One database transaction for everything this thread does to the store inside.

        Within the block, :meth:`transaction` and :meth:`read_transaction` on this thread
        become SAVEPOINTs of one connection (a failing one rolls back alone, as on SQLite)
        and :meth:`read`/:meth:`vread` see its uncommitted writes; all of it commits when
        the block ends, or none of it when it raises. Nested blocks are savepoints.
        Other threads are unaffected. See https://www.postgresql.org/docs/15/sql-savepoint.html.
        """
        pinned: psycopg.Connection[Any] | None = getattr(self._pinned, "conn", None)
        if pinned is not None:
            with pinned.transaction():
                yield
            return
        with self._pool.connection() as conn, conn.transaction():
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextlib.contextmanager
    def _transaction(self, readonly: bool) -> Iterator[PostgresTransaction]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            tx = PostgresTransaction(cur, self._indexer, self._clock, readonly=readonly)
            if self.before_commit is not None and not readonly:
                tx.before_commit, tx.written = self.before_commit, []
            try:
                yield tx
                tx._fire_before_commit()  # e.g. the audit record of this write
            finally:
                tx._closed = True

    def transaction(self) -> contextlib.AbstractContextManager[PostgresTransaction]:
        """A READ COMMITTED transaction; writes lock rows with ``FOR UPDATE``.

        See https://www.postgresql.org/docs/15/transaction-iso.html.
        """
        return self._transaction(False)

    def read_transaction(self) -> contextlib.AbstractContextManager[PostgresTransaction]:
        """A transaction in which writes raise StoreError."""
        return self._transaction(True)

    def read(self, type: str, id: str) -> StoredResource:
        """Read the current version in one round trip (autocommit, prepared statement).

        See https://hl7.org/fhir/R4/http.html#read.
        """
        with self._connection() as conn:
            row = conn.execute(_SELECT_CURRENT_PG, (type, id)).fetchone()
        return current_version(
            type, id, row, None if row is None or row[3] is None else row[3].encode()
        )

    def vread(self, type: str, id: str, version: int) -> StoredResource:
        """Read one version in one round trip (https://hl7.org/fhir/R4/http.html#vread)."""
        with self._connection() as conn:
            row = conn.execute(_SELECT_VERSION_PG, (type, id, version)).fetchone()
        data = None if row is None or row[3] is None else row[3].encode()
        return past_version(type, id, version, row, data)

    def iter_current(
        self, types: Sequence[str] | None = None, since: str | None = None
    ) -> Iterator[StoredResource]:
        """Stream current, non-deleted resources through a server-side cursor.

        Holds one pooled connection until the iterator is exhausted or closed.
        See https://hl7.org/fhir/uv/bulkdata/export.html.
        """
        query = iter_current_sql(types, since)
        if query is None:
            return
        sql, params = _pg(query[0]), query[1]
        name = f"cmio_iter_{next(self._cursor_names)}"
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=name) as cur,
        ):
            cur.itersize = 1000
            cur.execute(sql, params)
            for r in cur:
                yield StoredResource(r[0], r[1], r[2], r[3], False, r[4].encode())

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()


_SELECT_CURRENT_PG = _pg(SELECT_CURRENT)
_SELECT_VERSION_PG = _pg(SELECT_VERSION)
_SELECT_MANY_LOCKED = (
    "SELECT r.* FROM unnest(%b::text[]) AS k(id) CROSS JOIN LATERAL"
    " (SELECT id, version, last_updated, deleted, data FROM resource"
    "  WHERE type = %s AND id = k.id LIMIT 1 FOR UPDATE) AS r"
)
_UPSERT_MANY = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, data)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::int[], %b::text[], %b::bool[], %b::text[])"
    " ON CONFLICT (type, id) DO UPDATE SET version = excluded.version,"
    " last_updated = excluded.last_updated, deleted = excluded.deleted, data = excluded.data"
)
_COPY_HISTORY = (
    "COPY resource_history (type, id, version, last_updated, deleted, method, data) FROM STDIN"
)


def _copy_index(table: str) -> str:
    """``COPY`` into one index table (column order of :data:`INDEX_TABLES`)."""
    spec = next(t for t in INDEX_TABLES if t.name == table)
    names = ["resource_type", "resource_id", "param", *(c[0] for c in spec.columns)]
    return f"COPY {table} ({', '.join(names)}) FROM STDIN"
