"""Statements and row conversions both SQL backends share (resource, history, index tables).

A version's data is written once: the current version's bytes live only in ``resource``
(its history row has NULL data) and move to ``resource_history`` when a newer version or a
tombstone replaces it (``ARCHIVE_DATA``). See https://hl7.org/fhir/R4/http.html#versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.indexing.tables import INDEX_TABLES, insert_sql
from cmio.store._common import parse_date_range
from cmio.store.base import GoneError, NotFoundError, StoredResource

__all__ = [
    "ARCHIVE_DATA",
    "DELETE_INDEX",
    "DELETE_TOKENS",
    "INSERT_CURRENT",
    "INSERT_HISTORY",
    "INSERT_INDEX",
    "SELECT_CURRENT",
    "SELECT_VERSION",
    "UPDATE_CURRENT",
    "UPSERT_CURRENT",
    "Row",
    "archive_args",
    "current_version",
    "iter_current_sql",
    "past_version",
]

Row = tuple[Any, ...]

SELECT_CURRENT = (
    "SELECT version, last_updated, deleted, data FROM resource WHERE type = ? AND id = ?"
)
# A version's data is written once: the current version's bytes live only in
# ``resource`` (its history row has NULL data) and move to ``resource_history``
# when a newer version or a tombstone replaces it (see ARCHIVE_DATA).
SELECT_VERSION = (
    "SELECT h.last_updated, h.deleted, h.method, COALESCE(h.data, r.data)"
    " FROM resource_history h LEFT JOIN resource r"
    " ON r.type = h.type AND r.id = h.id AND r.version = h.version"
    " WHERE h.type = ? AND h.id = ? AND h.version = ?"
)
ARCHIVE_DATA = (
    "UPDATE resource_history SET data ="
    " (SELECT r.data FROM resource r WHERE r.type = ? AND r.id = ?)"
    " WHERE type = ? AND id = ? AND data IS NULL"
    " AND version = (SELECT r.version FROM resource r WHERE r.type = ? AND r.id = ?)"
)
INSERT_CURRENT = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, data)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO NOTHING"
)
UPDATE_CURRENT = (
    "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, data = ?"
    " WHERE type = ? AND id = ?"
)
UPSERT_CURRENT = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, data)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET"
    " version = excluded.version, last_updated = excluded.last_updated,"
    " deleted = excluded.deleted, data = excluded.data"
)
INSERT_HISTORY = (
    "INSERT INTO resource_history (type, id, version, last_updated, deleted, method, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
DELETE_TOKENS = "DELETE FROM token_index WHERE resource_type = ? AND resource_id = ?"
#: per index table: the statement removing one resource's rows
DELETE_INDEX = {
    t.name: f"DELETE FROM {t.name} WHERE resource_type = ? AND resource_id = ?"
    for t in INDEX_TABLES
}
#: per index table: the INSERT of one row ``(resource_type, resource_id, param, *columns)``
INSERT_INDEX = {t.name: insert_sql(t) for t in INDEX_TABLES}


def iter_current_sql(
    types: Sequence[str] | None, since: str | None
) -> tuple[str, list[Any]] | None:
    """The ``iter_current`` query (``?`` placeholders) and its parameters; None when
    ``types`` is empty, so nothing can match (https://hl7.org/fhir/uv/bulkdata/export.html)."""
    where: list[str] = ["NOT deleted"]
    params: list[Any] = []
    if types is not None:
        if not types:
            return None
        where.append(f"type IN ({', '.join('?' * len(types))})")
        params.extend(types)
    if since is not None:
        where.append("last_updated >= ?")
        params.append(parse_date_range(since)[0])
    sql = (
        "SELECT type, id, version, last_updated, data FROM resource"
        f" WHERE {' AND '.join(where)} ORDER BY type, id"
    )
    return sql, params


def archive_args(rtype: str, id: str) -> tuple[str, ...]:
    """Parameters of ``ARCHIVE_DATA`` for one resource."""
    return (rtype, id, rtype, id, rtype, id)


def current_version(type: str, id: str, row: Row | None, data: bytes | None) -> StoredResource:
    """A ``SELECT_CURRENT`` row as a readable resource (https://hl7.org/fhir/R4/http.html#read).

    Raises:
        NotFoundError: no row; GoneError: the current version is a deletion.
    """
    if row is None:
        raise NotFoundError(f"{type}/{id} not found")
    if row[2]:
        raise GoneError(f"{type}/{id} was deleted")
    return StoredResource(type, id, row[0], row[1], False, data)


def past_version(
    type: str, id: str, version: int, row: Row | None, data: bytes | None
) -> StoredResource:
    """A ``SELECT_VERSION`` row as a version (https://hl7.org/fhir/R4/http.html#vread).

    Raises:
        NotFoundError: no such version; GoneError: the version is a deletion.
    """
    if row is None:
        raise NotFoundError(f"{type}/{id}/_history/{version} not found")
    if row[1]:
        raise GoneError(f"{type}/{id}/_history/{version} is a deletion")
    return StoredResource(type, id, version, row[0], False, data, row[2])
