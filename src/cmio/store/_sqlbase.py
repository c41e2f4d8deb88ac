"""The FHIR versioning logic both SQL backends share.

:class:`SqlTransaction` implements :class:`~cmio.store.base.Transaction` on top of
four primitives (``_fetchone``, ``_fetchall``, ``_execute``, ``_executemany``)
that a backend provides for its driver. Every write touches three tables in
the caller's transaction: ``resource`` (current version), ``resource_history``
(all versions) and ``token_index`` (search rows from the :class:`Indexer`).
See https://hl7.org/fhir/R4/http.html#versions.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from cmio.store import _audit
from cmio.store._common import Clock, check_id, new_id, resource_type_of, stamp
from cmio.store._query import history_sql, known_total, search_sql
from cmio.store._sqlbulk import BulkPuts
from cmio.store._sqlmembers import CompartmentReads
from cmio.store._sqlrows import (
    ARCHIVE_DATA,
    DELETE_INDEX,
    DELETE_TOKENS,
    INSERT_CURRENT,
    INSERT_HISTORY,
    INSERT_INDEX,
    SELECT_CURRENT,
    SELECT_VERSION,
    UPDATE_CURRENT,
    Row,
    archive_args,
    current_version,
    iter_current_sql,
    past_version,
)
from cmio.store.base import (
    ConflictError,
    HistoryPage,
    Indexer,
    SearchPage,
    SearchQuery,
    StoredResource,
    StoreError,
    TableRows,
    Transaction,
    VersionConflictError,
)

__all__ = [
    "ARCHIVE_DATA",
    "DELETE_INDEX",
    "DELETE_TOKENS",
    "INSERT_INDEX",
    "SELECT_CURRENT",
    "SELECT_VERSION",
    "Row",
    "SqlTransaction",
    "archive_args",
    "current_version",
    "iter_current_sql",
    "past_version",
]

Json = dict[str, Any]

IndexRows = TableRows
_CHUNK = 500


class SqlTransaction(BulkPuts, CompartmentReads, Transaction, abc.ABC):
    """Versioned-resource logic over a DB-API-like connection (``?`` placeholders)."""

    #: appended to row-locking selects (``" FOR UPDATE"`` on PostgreSQL)
    for_update = ""
    #: the SQL dialect search statements are rendered for
    dialect = "sqlite"

    def __init__(self, indexer: Indexer, clock: Clock, *, readonly: bool) -> None:
        self._indexer = indexer
        self._clock = clock
        self._readonly = readonly
        self._closed = False

    # -- primitives a backend provides -------------------------------------------------

    @abc.abstractmethod
    def _fetchone(self, sql: str, params: Sequence[Any]) -> Row | None: ...

    @abc.abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]: ...

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run a write statement and return its row count."""

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def _batch(self) -> contextlib.AbstractContextManager[object]:
        """Group the following statements into one round trip where the driver can."""
        return contextlib.nullcontext()

    def _fetch_rows(self, rtype: str, ids: list[str]) -> list[Row]:
        """Current rows ``(id, version, last_updated, deleted, data)`` for ``ids``, locked."""
        rows: list[Row] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            sql = (
                "SELECT id, version, last_updated, deleted, data FROM resource"
                f" WHERE type = ? AND id IN ({', '.join('?' * len(chunk))}){self.for_update}"
            )
            rows.extend(self._fetchall(sql, (rtype, *chunk)))
        return rows

    def _data_in(self, data: bytes) -> Any:
        """Convert resource JSON bytes to the driver's parameter for the ``data`` column."""
        return data

    def _data_out(self, value: Any) -> bytes | None:
        """Convert a fetched ``data`` column value to bytes (``None`` for tombstones)."""
        return value  # type: ignore[no-any-return]

    # -- reads ---------------------------------------------------------------------------

    def current(self, type: str, id: str) -> StoredResource | None:
        row = self._fetchone(SELECT_CURRENT, (type, id))
        if row is None:
            return None
        return StoredResource(type, id, row[0], row[1], bool(row[2]), self._data_out(row[3]))

    def read(self, type: str, id: str) -> StoredResource:
        row = self._fetchone(SELECT_CURRENT, (type, id))
        return current_version(type, id, row, None if row is None else self._data_out(row[3]))

    def vread(self, type: str, id: str, version: int) -> StoredResource:
        row = self._fetchone(SELECT_VERSION, (type, id, version))
        return past_version(type, id, version, row, None if row is None else self._data_out(row[3]))

    def token_ids(
        self, type: str, param: str, system: str | None, value: str, limit: int = 2
    ) -> list[str]:
        """Ids of current ``type`` resources indexed with token ``param`` = ``system|value``.

        ``system`` None: the token has no system (``param=|value``). At most ``limit``
        ids: one index probe instead of a compiled search, for the identifier matches of
        conditional creates and updates (https://hl7.org/fhir/R4/search.html#token).
        """
        sql = (
            "SELECT DISTINCT resource_id FROM token_index WHERE resource_type = ? AND param = ?"
            f" AND value = ? AND system {'IS NULL' if system is None else '= ?'} LIMIT ?"
        )
        args = [type, param, value, *(() if system is None else (system,)), limit]
        return [str(row[0]) for row in self._fetchall(sql, args)]

    def search(self, query: SearchQuery) -> SearchPage:
        """Run a search (https://hl7.org/fhir/R4/search.html#total for its total).

        The total is filled whenever it is known without a count statement (a page that
        is not full, :func:`cmio.store._query.known_total`), and counted otherwise only
        when ``query.total`` asks for it (``None`` if not).
        """
        compiler = getattr(self._indexer, "search_compiler", None)
        if compiler is not None:  # every parameter (https://hl7.org/fhir/R4/search.html)
            page, count = compiler.compile(query, self.dialect)
        else:  # a plain Indexer: tokens, _id, _type, _lastUpdated only
            page, count = search_sql(query)
        rows = self._fetchall(page.text, page.params) if query.count > 0 else []
        resources = [
            StoredResource(r[0], r[1], r[2], r[3], False, self._data_out(r[4])) for r in rows
        ]
        found = len(rows)
        total = known_total(query.count, query.offset, found, query.after is not None)
        if total is None and count is not None:
            counted = self._fetchone(count.text, count.params)
            total = int(counted[0]) if counted else 0
        return SearchPage(resources, total)

    def history(
        self,
        type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        at: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> HistoryPage:
        if id is not None and type is None:
            raise StoreError("instance history needs a resource type")
        page, total_sql = history_sql(type, id, since, at, count, offset)
        rows = self._fetchall(page.text, page.params) if count > 0 else []
        entries = [
            StoredResource(r[0], r[1], r[2], r[3], bool(r[4]), self._data_out(r[6]), r[5])
            for r in rows
        ]
        found = self._fetchone(total_sql.text, total_sql.params)
        return HistoryPage(entries, int(found[0]) if found else 0)

    # -- writes --------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._readonly:
            raise StoreError("write attempted in a read-only transaction")

    def _locked_current(self, type: str, id: str) -> Row | None:
        return self._fetchone(SELECT_CURRENT + self.for_update, (type, id))

    def create(
        self, resource: Json, *, id: str | None = None, ahead: TableRows | None = None
    ) -> StoredResource:
        self._writable()
        rtype = resource_type_of(resource)
        if id is None:
            id = new_id()
        elif check_id(id) and ahead is None and self._locked_current(rtype, id) is not None:
            # (with ``ahead`` the id was drawn before the transaction: the insert
            # below still refuses one in use)
            raise ConflictError(f"{rtype}/{id} already exists")
        stored = self._write(rtype, id, None, self._clock.now(), resource, "POST", ahead)
        if stored is None:
            raise ConflictError(f"{rtype}/{id} already exists")
        return stored

    def update(
        self,
        resource: Json,
        *,
        if_match: int | None = None,
        method: str = "PUT",
        ahead: TableRows | None = None,
    ) -> tuple[StoredResource, bool]:
        self._writable()
        rtype = resource_type_of(resource)
        id = check_id(resource.get("id"))  # type: ignore[arg-type]
        for _ in range(3):
            row = self._locked_current(rtype, id)
            if if_match is not None and (row is None or row[0] != if_match):
                have = "none" if row is None else row[0]
                raise VersionConflictError(
                    f"{rtype}/{id}: If-Match version {if_match} but current is {have}"
                )
            if row is None:
                stored = self._write(rtype, id, None, self._clock.now(), resource, method, ahead)
                if stored is not None:
                    return stored, True
                continue  # a concurrent transaction created it first: update that
            stored = self._write(
                rtype, id, row[0], self._clock.now(row[1]), resource, method, ahead
            )
            assert stored is not None
            return stored, bool(row[2])
        raise ConflictError(f"{rtype}/{id} is being created concurrently")

    def delete(self, type: str, id: str) -> StoredResource | None:
        self._writable()
        row = self._locked_current(type, id)
        if row is None or row[2]:
            return None
        version, last_updated = row[0] + 1, self._clock.now(row[1])
        with self._batch():
            self._execute(ARCHIVE_DATA, archive_args(type, id))
            self._execute(UPDATE_CURRENT, (version, last_updated, True, None, type, id))
            self._execute(INSERT_HISTORY, (type, id, version, last_updated, True, "DELETE", None))
            for delete in DELETE_INDEX.values():
                self._execute(delete, (type, id))
        tombstone = StoredResource(type, id, version, last_updated, True, None, "DELETE")
        if self.written is not None:
            self.written.append(tombstone)
        return tombstone

    def _write(
        self,
        rtype: str,
        id: str,
        prior: int | None,
        last_updated: str,
        resource: Json,
        method: str,
        ahead: TableRows | None = None,
    ) -> StoredResource | None:
        """Write the version after ``prior`` (``None``: the first; returns None if it exists).

        ``ahead``: the rows ``SearchIndexer.table_rows`` gave for ``resource`` (with its
        final ``id``) before the transaction (only used with such an indexer); None:
        extract them here.
        """
        version = 1 if prior is None else prior + 1
        data = stamp(resource, id, version, last_updated)
        param = self._data_in(data)
        if ahead is not None and hasattr(self._indexer, "table_rows"):
            index: IndexRows = {
                table: [(rtype, id, *row) for row in rows] for table, rows in ahead.items() if rows
            }
        else:
            index = self._index_rows(rtype, id, resource)
        if prior is None and not self._execute(
            INSERT_CURRENT, (rtype, id, version, last_updated, False, param)
        ):
            return None
        with self._batch():
            if prior is not None:
                self._execute(ARCHIVE_DATA, archive_args(rtype, id))
                self._execute(UPDATE_CURRENT, (version, last_updated, False, param, rtype, id))
                index = self._replace_index(rtype, id, index)
            self._execute(INSERT_HISTORY, (rtype, id, version, last_updated, False, method, None))
            for table, rows in index.items():
                self._executemany(INSERT_INDEX[table], rows)
        stored = StoredResource(rtype, id, version, last_updated, False, data, method)
        if self.written is not None:
            self.written.append(stored)
        return stored

    def _replace_index(self, rtype: str, id: str, index: IndexRows) -> IndexRows:
        """Remove an updated resource's index rows; return those of ``index`` to insert
        (here all of them; SQLite keeps the unchanged ones, :mod:`cmio.store._sqlitediff`)."""
        for delete in DELETE_INDEX.values():
            self._execute(delete, (rtype, id))
        return index

    def _index_rows(self, rtype: str, id: str, resource: Json) -> IndexRows:
        """Index rows per table, each ``(resource_type, resource_id, param, *columns)``.

        An indexer with ``table_rows`` (:class:`cmio.indexing.SearchIndexer`) fills
        every typed table; a plain :class:`Indexer` yields ``token`` rows only.
        """
        table_rows = getattr(self._indexer, "table_rows", None)
        if table_rows is not None:
            found: IndexRows = table_rows(resource)
            return {
                table: [(rtype, id, *row) for row in rows] for table, rows in found.items() if rows
            }
        out: list[tuple[Any, ...]] = []
        for row in self._indexer.rows(resource):
            if row.kind != "token":
                raise StoreError(f"index kind {row.kind!r} is not supported by this backend")
            out.append((rtype, id, row.param, row.system or None, row.value))
        return {"token_index": out} if out else {}

    # -- background jobs -----------------------------------------------------------------

    def scan(self, after: tuple[str, str] | None, limit: int) -> list[StoredResource]:
        where = "NOT deleted"
        params: list[Any] = [limit]
        if after is not None:
            where, params = "NOT deleted AND (type, id) > (?, ?)", [after[0], after[1], limit]
        rows = self._fetchall(
            "SELECT type, id, version, last_updated, data FROM resource"
            f" WHERE {where} ORDER BY type, id LIMIT ?",
            params,
        )
        return [StoredResource(r[0], r[1], r[2], r[3], False, self._data_out(r[4])) for r in rows]

    def replace_index(self, keys: Sequence[tuple[str, str]], rows: Sequence[TableRows]) -> None:
        self._writable()
        merged: IndexRows = {}
        for per in rows:
            for table, table_rows in per.items():
                merged.setdefault(table, []).extend(table_rows)
        with self._batch():
            for delete in DELETE_INDEX.values():
                self._executemany(delete, list(keys))
            for table, table_rows in merged.items():
                self._executemany(INSERT_INDEX[table], table_rows)

    def job_state(self, name: str) -> str | None:
        row = self._fetchone("SELECT state FROM job_state WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def set_job_state(self, name: str, state: str) -> None:
        self._writable()
        self._execute(
            "INSERT INTO job_state (name, state) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET state = excluded.state",
            (name, state),
        )

    # -- audit (https://profiles.ihe.net/ITI/BALP/) ---------------------------------------

    #: serializes appends to the audit chain until commit (PostgreSQL: an advisory lock)
    audit_lock: str | None = None

    def audit_head(self) -> tuple[int, str] | None:
        self._writable()
        if self.audit_lock is not None:
            self._fetchone(self.audit_lock, ())
        row = self._fetchone(_audit.SELECT_HEAD, ())
        return None if row is None else (int(row[0]), str(row[1]))

    def audit_append(self, rows: Sequence[Any]) -> None:
        self._writable()
        self._executemany(
            _audit.INSERT_ROW, [(r.seq, r.recorded, self._data_in(r.data), r.hash) for r in rows]
        )

    def audit_rows(self, after: int, limit: int) -> list[Any]:
        return [
            _audit.AuditRow(int(r[0]), r[1], _audit.as_bytes(r[2]), r[3])
            for r in self._fetchall(_audit.SELECT_AFTER, (after, limit))
        ]

    def _fire_before_commit(self) -> None:
        """Run the repository's before-commit hook when this write transaction wrote."""
        if self.before_commit is not None and self.written:
            self.before_commit(self)

    # -- bulk ----------------------------------------------------------------------------
