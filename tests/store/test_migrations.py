"""Schema migrations from every earlier released store schema, on SQLite and PostgreSQL.

Each earlier schema is built from its DDL as released (``migration_schemas/*.sql``:
version 1, version 2 as first released, version 2 as last written before the
migration framework), filled with resources the way that release wrote them
(resource and history rows, and the index rows it had tables for), then opened: the
store migrates, every resource reads back, searches of every index kind work and
``cmio doctor --full`` passes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from cmio.admin.doctor import examine
from cmio.cli.main import app
from cmio.indexing import SearchIndexer
from cmio.indexing.tables import insert_sql
from cmio.model import load_model
from cmio.store import SearchClause, SearchQuery, open_repository
from cmio.store.base import GoneError
from cmio.store.migrations import SchemaTooNewError, latest, pending, steps
from cmio.testing.pg import with_search_path

SCHEMAS = Path(__file__).resolve().parent / "migration_schemas"
N = 30
Execute = Callable[[str, tuple[Any, ...]], None]


@pytest.fixture(scope="module")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def statements(name: str) -> list[str]:
    text = (SCHEMAS / name).read_text(encoding="utf-8")
    parts = [p.strip() for p in text.split(";\n\n")]
    out = []
    for part in parts:
        lines = [ln for ln in part.splitlines() if not ln.startswith("-- ")]
        if "\n".join(lines).strip():
            out.append("\n".join(lines).strip().rstrip(";"))
    return out


def resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(N):
        out.append(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [{"system": "urn:mrn", "value": f"m{i}"}],
                "name": [{"family": f"Fam{i % 3}", "given": ["Ann"]}],
                "birthDate": f"19{50 + i:02d}-01-02",
                "text": {"status": "generated", "div": f"<div>patient{i} zebra{i % 2}</div>"},
            }
        )
        out.append(
            {
                "resourceType": "Observation",
                "id": f"o{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/p{i}"},
                "valueQuantity": {"value": 60 + i, "unit": "/min", "code": "/min"},
            }
        )
    return out


def fill(execute: Execute, dialect: str, level: str, indexer: SearchIndexer) -> None:
    """Rows as the release at ``level`` wrote them (v1: token rows of identifiers only)."""
    stamp = "2024-01-01T00:00:00.000Z"
    tables = {"v1": {"token_index"}, "v2": None, "v2_audit": None}[level]

    def exists(table: str) -> bool:
        if table == "text_index":
            return level == "v2_audit"
        return tables is None or table in tables

    def put(res: dict[str, Any], version: int, deleted: bool = False) -> None:
        data = orjson.dumps({**res, "meta": {"versionId": str(version), "lastUpdated": stamp}})
        value: Any = data if dialect == "sqlite" else data.decode()
        flag: Any = int(deleted) if dialect == "sqlite" else deleted
        stored = None if deleted else value
        execute("DELETE FROM resource WHERE type = ? AND id = ?", (res["resourceType"], res["id"]))
        execute(
            "INSERT INTO resource (type, id, version, last_updated, deleted, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (res["resourceType"], res["id"], version, stamp, flag, stored),
        )
        execute(
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, method,"
            " data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (res["resourceType"], res["id"], version, stamp, flag, "PUT", value),
        )
        for spec in _tables():  # the release replaced a resource's rows on every write
            if exists(spec.name):
                execute(
                    f"DELETE FROM {spec.name} WHERE resource_type = ? AND resource_id = ?",
                    (res["resourceType"], res["id"]),
                )
        if deleted:
            return
        for table, rows in indexer.table_rows(res).items():
            if table == "text_index" and level != "v2_audit":
                continue  # no full-text table before v2_audit
            if tables is not None and table not in tables:
                continue
            if table == "token_index" and tables is not None:
                rows = [r for r in rows if r[0] == "identifier"]
            for row in rows:
                spec = next(t for t in _tables() if t.name == table)
                execute(insert_sql(spec), (res["resourceType"], res["id"], *row))

    for res in resources():
        put(res, 1)
    put({**resources()[0], "gender": "female"}, 2)  # p0 has two versions
    put({"resourceType": "Observation", "id": "o1"}, 2, deleted=True)


def _tables() -> Any:
    from cmio.indexing.tables import INDEX_TABLES

    return INDEX_TABLES


@contextlib.contextmanager
def sqlite_store(tmp_path: Path, schema: str | None) -> Iterator[tuple[str, Execute]]:
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous = OFF")  # test data: one fsync per row is slow
        if schema is not None:
            for sql in statements(schema):
                conn.execute(sql)

        def execute(sql: str, params: tuple[Any, ...]) -> None:
            conn.execute(sql, params)

        yield f"sqlite:///{path}", execute


@contextlib.contextmanager
def postgres_store(base: str, schema: str | None) -> Iterator[tuple[str, Execute]]:
    name = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    url = with_search_path(base, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")  # test data: no flush per row
        if schema is not None:
            for sql in statements(schema):
                conn.execute(sql)  # type: ignore[call-overload]

        def execute(sql: str, params: tuple[Any, ...]) -> None:
            conn.execute(sql.replace("?", "%s"), params)  # type: ignore[call-overload]

        yield url, execute


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        yield "sqlite", lambda schema: sqlite_store(tmp_path, schema)
    else:
        base = request.getfixturevalue("postgres_url")
        yield "postgres", lambda schema: postgres_store(base, schema)


def ids(repo: Any, rtype: str, *clauses: tuple[str, str]) -> set[str]:
    query = SearchQuery(rtype, tuple(SearchClause(n, (v,)) for n, v in clauses), count=1000)
    return {r.id for r in repo.search(query).resources}


@pytest.mark.parametrize("level", ["v1", "v2", "v2_audit"])
def test_migrate_from_earlier_schema(backend: Any, level: str, indexer: SearchIndexer) -> None:
    dialect, make = backend
    version = 1 if level == "v1" else 2
    with make(f"{dialect}_{level}.sql") as (url, execute):
        fill(execute, dialect, level, indexer)
        dry = CliRunner().invoke(app, ["migrate", "--database", url, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert f"at store schema version {version}" in dry.output
        for step in pending(dialect, version):
            assert step.description in dry.output
        applied = CliRunner().invoke(app, ["migrate", "--database", url])
        assert applied.exit_code == 0, applied.output
        assert f"now at {latest(dialect)}" in applied.output
        repo = open_repository(url, indexer=indexer)
        try:
            for res in resources():
                if res["id"] == "o1":
                    with pytest.raises(GoneError):
                        repo.read("Observation", "o1")
                    continue
                data = orjson.loads(repo.read(res["resourceType"], res["id"]).data)
                data.pop("meta")
                expected = {**res, "gender": "female"} if res["id"] == "p0" else res
                assert data == expected
            assert "gender" not in orjson.loads(repo.vread("Patient", "p0", 1).data)
            assert ids(repo, "Patient", ("family", "fam1")) == {f"p{i}" for i in range(1, N, 3)}
            assert ids(repo, "Patient", ("identifier", "urn:mrn|m7")) == {"p7"}
            assert ids(repo, "Patient", ("birthdate", "ge1970")) == {f"p{i}" for i in range(20, N)}
            assert ids(repo, "Patient", ("_text", "zebra1")) == {f"p{i}" for i in range(1, N, 2)}
            assert ids(repo, "Observation", ("subject", "Patient/p4")) == {"o4"}
            over = {f"o{i}" for i in range(N) if 60 + i > 80 and i != 1}
            assert ids(repo, "Observation", ("value-quantity", "gt80")) == over
            assert ids(repo, "Observation", ("code", "http://loinc.org|8867-4")) == {
                f"o{i}" for i in range(N) if i != 1
            }
            report = examine(repo, indexer, full=True)
            assert report.ok, report.findings
        finally:
            repo.close()
        again = CliRunner().invoke(app, ["migrate", "--database", url, "--dry-run"])
        assert "up to date" in again.output
        if level == "v1":  # cmio doctor shows the version (once: it loads the model again)
            doctor = CliRunner().invoke(app, ["doctor", "--database", url])
            assert doctor.exit_code == 0 and f"schema {latest(dialect)}" in doctor.output


def test_fresh_store_and_newer_schema_refused(backend: Any) -> None:
    _, make = backend
    with make(None) as (url, execute):
        repo = open_repository(url)
        repo.close()
        execute("UPDATE schema_version SET version = ? WHERE component = 'store'", (99,))
        with pytest.raises(SchemaTooNewError, match=r"schema version 99.*supports up to"):
            open_repository(url)
        result = CliRunner().invoke(app, ["migrate", "--database", url, "--dry-run"])
        assert result.exit_code == 2 and "upgrade cmio" in result.output


def test_steps_are_numbered_and_versions_agree() -> None:
    from cmio.store.postgres import SCHEMA_VERSION as PG
    from cmio.store.sqlite import SCHEMA_VERSION as LITE

    assert LITE == latest("sqlite") == len(steps("sqlite"))
    assert PG == latest("postgres") == len(steps("postgres"))
    assert [s.version for s in pending("sqlite", 1)] == list(range(2, LITE + 1))
