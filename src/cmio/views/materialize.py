"""Materialized views: ViewDefinitions kept as named tables of an embedded DuckDB database.

Storage decision: ViewDefinition is not an R4 resource type, so a ViewDefinition
lives in the FHIR store as a ``Basic`` resource (``code`` =
:data:`VIEW_CODE`) whose extension :data:`VIEW_EXTENSION` carries the
ViewDefinition JSON as ``valueString`` (versioned, searchable, exported like any
resource; https://hl7.org/fhir/R4/basic.html). The analytics database
(default ``cmio-data/analytics.duckdb``) holds one table per view, named after it,
plus the bookkeeping table ``_cmio_views`` (definition, watermark, row count).

Refreshes are incremental: only resources whose ``meta.lastUpdated`` is at or
after the last run's watermark are read from the store and run through the view
(DuckDB engine); their old rows are deleted first (each table has a hidden key
column ``_resource_key``, the resource id), and deletions are found as
tombstones in the store's history since the watermark. A changed definition
rebuilds the table. See https://sql-on-fhir.org/ig/latest/ and
https://hl7.org/fhir/R4/http.html#history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from cmio.store.base import Repository
from cmio.views.parse import ViewDefinitionError, parse_view
from cmio.views.runner import run

__all__ = [
    "KEY_COLUMN",
    "VIEW_CODE",
    "VIEW_EXTENSION",
    "Analytics",
    "Deidentify",
    "Refresh",
    "stored_views",
    "view_as_basic",
    "view_from_basic",
]

VIEW_EXTENSION = "https://cmio.dev/fhir/StructureDefinition/view-definition"
"""Extension on ``Basic`` carrying a ViewDefinition's JSON (``valueString``)."""
VIEW_CODE = {"system": "https://cmio.dev/fhir/CodeSystem/basic-kind", "code": "ViewDefinition"}
"""``Basic.code`` of stored ViewDefinitions."""
KEY_COLUMN = "_resource_key"
"""The hidden column of materialized tables: the id of the resource a row came from."""
_BUILD_KEY = "cmioresourcekey"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}$")
_HISTORY_PAGE = 5000


class Deidentify(Protocol):
    """Applied to every resource before the view: :class:`cmio.security.deid.Deidentifier`."""

    def deidentify(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The de-identified resource (None: left out)."""
        ...

    def pseudonym(self, resource_type: str, resource_id: str) -> str:
        """The pseudonymous id of a resource."""
        ...


def view_as_basic(view: Mapping[str, Any], id: str | None = None) -> dict[str, Any]:
    """A ViewDefinition (JSON) wrapped in a ``Basic`` resource for the store."""
    parse_view(dict(view))  # refuse invalid definitions before storing them
    basic: dict[str, Any] = {
        "resourceType": "Basic",
        "code": {"coding": [dict(VIEW_CODE)], "text": str(view.get("name") or "ViewDefinition")},
        "extension": [{"url": VIEW_EXTENSION, "valueString": json.dumps(dict(view))}],
    }
    if id is not None:
        basic["id"] = id
    return basic


def view_from_basic(basic: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ViewDefinition JSON a ``Basic`` resource carries, or None if it carries none."""
    for extension in basic.get("extension", []):
        if extension.get("url") == VIEW_EXTENSION and isinstance(extension.get("valueString"), str):
            data = json.loads(extension["valueString"])
            return data if isinstance(data, dict) else None
    return None


def stored_views(repository: Repository) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ViewDefinition stored in ``repository``: ``(Basic id, definition)``."""
    for stored in repository.iter_current(["Basic"]):
        if stored.data is None:
            continue
        view = view_from_basic(json.loads(stored.data))
        if view is not None:
            yield stored.id, view


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh did.

    Attributes:
        name: the table.
        rebuilt: the table was built from scratch (first run or changed definition).
        resources: resources read from the store and run through the view.
        deleted: deleted resources whose rows were removed.
        rows: the table's row count afterwards.
        watermark: the newest ``lastUpdated`` seen (the next run starts there).
    """

    name: str
    rebuilt: bool
    resources: int
    deleted: int
    rows: int
    watermark: str | None


def _keyed(view: Mapping[str, Any]) -> dict[str, Any]:
    """The definition with a leading key column (one row per resource: a cross product)."""
    keyed = dict(view)
    names = {c.name for c in parse_view(dict(view)).columns()}
    if _BUILD_KEY in names:
        raise ViewDefinitionError(f"the column name {_BUILD_KEY} is reserved", "ViewDefinition")
    key = {"column": [{"name": _BUILD_KEY, "path": "getResourceKey()", "type": "string"}]}
    keyed["select"] = [key, *view.get("select", [])]
    return keyed


class Analytics:
    """The embedded analytics database of materialized views.

    Args:
        path: the DuckDB file (created with its folder when missing).
    """

    def __init__(self, path: Path | str = "cmio-data/analytics.duckdb") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection to the database (one writer process at a time)."""
        con = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            con.execute(
                "CREATE TABLE IF NOT EXISTS _cmio_views (name VARCHAR PRIMARY KEY,"
                " resource VARCHAR, definition VARCHAR, watermark VARCHAR, row_count BIGINT,"
                " refreshed VARCHAR)"
            )
        return con

    def tables(self) -> list[tuple[str, str, int, str | None]]:
        """``(name, resource, rows, watermark)`` of every materialized view."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT name, resource, row_count, watermark FROM _cmio_views ORDER BY name"
            ).fetchall()
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def materialize(
        self,
        view: Mapping[str, Any],
        repository: Repository,
        *,
        name: str | None = None,
        full: bool = False,
        deidentify: Deidentify | None = None,
    ) -> Refresh:
        """Create or bring up to date the table of ``view`` from ``repository``.

        Args:
            view: the ViewDefinition JSON.
            repository: the FHIR store.
            name: the table name (default: the view's ``name``).
            full: rebuild even when an incremental refresh is possible.
            deidentify: de-identify each resource before the view (the table is then
                keyed by pseudonyms; switching this on or off rebuilds the table).

        Raises:
            ViewDefinitionError: an invalid view, or no usable table name.
        """
        parsed = parse_view(dict(view))
        name = name or parsed.name
        if not name or not _NAME.match(name):
            raise ViewDefinitionError(
                f"{name!r} is not a usable table name (letters, digits, _)", "ViewDefinition.name"
            )
        definition = json.dumps(dict(view), sort_keys=True)
        if deidentify is not None:
            definition += "|deidentified"
        with self.connect() as con:
            found = con.execute(
                "SELECT definition, watermark FROM _cmio_views WHERE name = ?", [name]
            ).fetchall()
            state = found[0] if found else None
            rebuild = full or state is None or state[0] != definition
            since = None if rebuild or state is None else state[1]
            changed: list[dict[str, Any]] = []
            watermark = since
            for stored in repository.iter_current([parsed.resource], since):
                if stored.data is not None:
                    watermark = max(watermark or "", stored.last_updated)
                    resource = json.loads(stored.data)
                    if deidentify is not None:
                        resource = deidentify.deidentify(resource)
                    if resource is not None:
                        changed.append(resource)
            deleted: set[str] = set()
            if since is not None:
                deleted, newest = _tombstones(repository, parsed.resource, since)
                if newest is not None:
                    watermark = max(watermark or "", newest)
                if deidentify is not None:
                    deleted = {deidentify.pseudonym(parsed.resource, i) for i in deleted}
            table = run(_keyed(view), changed, engine="duckdb")
            table = table.rename_columns([KEY_COLUMN, *table.column_names[1:]])
            _write(con, name, table, rebuild, {r["id"] for r in changed} | deleted)
            rows = int(con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0])
            con.execute(
                "INSERT OR REPLACE INTO _cmio_views VALUES (?, ?, ?, ?, ?, ?)",
                [name, parsed.resource, definition, watermark, rows, _now()],
            )
        return Refresh(name, rebuild, len(changed), len(deleted), rows, watermark)

    def refresh_all(self, repository: Repository, *, full: bool = False) -> list[Refresh]:
        """Materialize every ViewDefinition stored in ``repository`` (see :func:`stored_views`)."""
        return [self.materialize(v, repository, full=full) for _, v in stored_views(repository)]


def _tombstones(repository: Repository, rtype: str, since: str) -> tuple[set[str], str | None]:
    """Ids deleted since ``since`` (current version a tombstone) and the newest change seen."""
    deleted: set[str] = set()
    newest: str | None = None
    offset = 0
    with repository.read_transaction() as tx:
        while True:
            page = tx.history(rtype, since=since, count=_HISTORY_PAGE, offset=offset)
            for entry in page.entries:
                newest = max(newest or "", entry.last_updated)
                if entry.deleted:
                    current = tx.current(rtype, entry.id)
                    if current is not None and current.deleted:
                        deleted.add(entry.id)
            offset += len(page.entries)
            if not page.entries or offset >= page.total:
                break
    return deleted, newest


def _write(
    con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, rebuild: bool, keys: set[str]
) -> None:
    con.register("_cmio_new_rows", table)
    try:
        con.execute("BEGIN")
        if rebuild:
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _cmio_new_rows')
        else:
            con.register("_cmio_keys", pa.table({"k": pa.array(sorted(keys), pa.string())}))
            con.execute(f'DELETE FROM "{name}" WHERE {KEY_COLUMN} IN (SELECT k FROM _cmio_keys)')
            con.execute(f'INSERT INTO "{name}" SELECT * FROM _cmio_new_rows')
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_cmio_new_rows")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
