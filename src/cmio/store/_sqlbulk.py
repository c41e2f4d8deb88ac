"""``put_many``: many resources written as given, in a few statements (the bulk import's
write path, https://hl7.org/fhir/uv/bulkdata/).

:class:`BulkPuts` is a mixin of :class:`cmio.store._sqlbase.SqlTransaction`, which
provides the primitives it declares abstract here.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from cmio.store._common import Clock, check_id, resource_type_of, stamp
from cmio.store._sqlrows import (
    ARCHIVE_DATA,
    DELETE_INDEX,
    INSERT_HISTORY,
    INSERT_INDEX,
    UPSERT_CURRENT,
    Row,
    archive_args,
)
from cmio.store.base import Indexer, StoredResource, StoreError, TableRows, _strip_meta

__all__ = ["BulkPuts"]

Json = dict[str, Any]
IndexRows = TableRows


class BulkPuts(abc.ABC):
    """Bulk upserts: unchanged resources kept, new versions stamped, index rows replaced."""

    _indexer: Indexer
    _clock: Clock

    @abc.abstractmethod
    def _writable(self) -> None: ...

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def _batch(self) -> contextlib.AbstractContextManager[object]: ...

    @abc.abstractmethod
    def _fetch_rows(self, rtype: str, ids: list[str]) -> list[Row]: ...

    @abc.abstractmethod
    def _data_in(self, data: bytes) -> Any: ...

    @abc.abstractmethod
    def _data_out(self, value: Any) -> bytes | None: ...

    @abc.abstractmethod
    def _index_rows(self, rtype: str, id: str, resource: Json) -> IndexRows: ...

    def put_many(
        self, resources: Sequence[Json], index: Sequence[TableRows | None] | None = None
    ) -> list[StoredResource]:
        self._writable()
        keyed = [(resource_type_of(r), check_id(r.get("id")), r) for r in resources]  # type: ignore[arg-type]
        if index is not None and len(index) != len(keyed):
            raise StoreError("put_many: index rows are not aligned with the resources")
        if not hasattr(self._indexer, "table_rows"):
            index = None  # rows for a plain Indexer are not what the workers computed
        known = self._fetch_many({(t, i) for t, i, _ in keyed})
        last_updated = self._clock.now(max((s.last_updated for s in known.values()), default=None))
        existed = set(known)
        parsed: dict[tuple[str, str], tuple[Json, Json]] = {}  # content without meta, meta
        final: dict[tuple[str, str], Row] = {}
        history: list[Row] = []
        rows: dict[tuple[str, str], IndexRows] = {}
        out: list[StoredResource] = []
        for position, (rtype, id, resource) in enumerate(keyed):
            key = (rtype, id)
            have = known.get(key)
            if have is not None and have.data is not None:
                seen = parsed.get(key)
                if seen is None:
                    stored_json = orjson.loads(have.data)
                    seen = parsed[key] = (_strip_meta(stored_json), stored_json["meta"])
                if seen[0] == _strip_meta(resource):
                    resource["meta"] = dict(seen[1])
                    out.append(have)
                    continue
            version = 1 if have is None else have.version + 1
            data = stamp(resource, id, version, last_updated)
            stored = known[key] = StoredResource(
                rtype, id, version, last_updated, False, data, "PUT"
            )
            parsed.pop(key, None)
            param = self._data_in(data)
            final[key] = (rtype, id, version, last_updated, False, param)
            history.append((rtype, id, version, last_updated, False, "PUT", param))
            ahead = index[position] if index is not None else None
            rows[key] = ahead if ahead is not None else self._index_rows(rtype, id, resource)
            out.append(stored)
        if final:
            # The last version of each key lives in ``resource`` only (written once).
            history = [
                (*row[:6], None) if final[(row[0], row[1])][2] == row[2] else row for row in history
            ]
            stale = [key for key in final if key in existed]
            merged: IndexRows = {}
            for per in rows.values():
                for table, table_rows in per.items():
                    merged.setdefault(table, []).extend(table_rows)
            self._bulk_write(list(final.values()), history, stale, merged)
        return out

    def _bulk_write(
        self,
        current: list[Row],
        history: list[Row],
        stale: list[tuple[str, str]],
        index: IndexRows,
    ) -> None:
        """Write ``put_many``'s rows: upsert ``current``, append ``history``, replace index rows.

        ``stale`` lists the (type, id) that existed before: their current data moves to
        their history row first, and their old index rows go before ``index`` is added.
        """
        with self._batch():
            if stale:
                self._executemany(ARCHIVE_DATA, [archive_args(t, i) for t, i in stale])
            self._executemany(UPSERT_CURRENT, current)
            self._executemany(INSERT_HISTORY, history)
            if stale:
                for delete in DELETE_INDEX.values():
                    self._executemany(delete, stale)
            for table, rows in index.items():
                self._executemany(INSERT_INDEX[table], rows)

    def _fetch_many(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        by_type: dict[str, list[str]] = {}
        for rtype, id in keys:
            by_type.setdefault(rtype, []).append(id)
        known: dict[tuple[str, str], StoredResource] = {}
        for rtype, ids in by_type.items():
            ids.sort()  # a stable lock order avoids deadlocks between concurrent imports
            for r in self._fetch_rows(rtype, ids):
                data = self._data_out(r[4])
                known[(rtype, r[0])] = StoredResource(rtype, r[0], r[1], r[2], bool(r[3]), data)
        return known
