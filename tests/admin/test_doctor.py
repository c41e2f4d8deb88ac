"""cmio doctor: a healthy store passes; each kind of corruption is found; --fix repairs indexes."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cmio.admin.doctor import diagnose
from cmio.cli.main import app
from cmio.indexing import SearchIndexer
from cmio.store import sqlite_path
from cmio.testing.pg import with_search_path
from tests.admin.conftest import UrlFactory, open_store, populate


def _raw(url: str, *statements: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url), isolation_level=None) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)


def _doctor(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", *args])
    return result.exit_code, result.output


def _store(url: str, indexer: SearchIndexer) -> None:
    repo = open_store(url, indexer)
    try:
        populate(repo, 8)
    finally:
        repo.close()


def test_healthy_store_passes(new_url: UrlFactory, indexer: SearchIndexer) -> None:
    url = new_url()
    _store(url, indexer)
    code, out = _doctor("--database", url, "--full")
    assert code == 0, out
    assert "store OK" in out and "audit 8" in out and "index 15" in out
    code, out = _doctor("--database", url, "--sample", "3")
    assert code == 0 and "index 3" in out


def test_each_corruption_is_found_and_indexes_fixed(
    new_url: UrlFactory, indexer: SearchIndexer
) -> None:
    url = new_url()
    _store(url, indexer)
    sqlite = url.startswith("sqlite")
    untrigger = (
        "DROP TRIGGER audit_log_no_update"
        if sqlite
        else "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"
    )
    _raw(
        url,
        "DELETE FROM string_index WHERE resource_type = 'Patient' AND resource_id = 'p3'",
        "INSERT INTO token_index (resource_type, resource_id, param, system, value)"
        " VALUES ('Patient', 'ghost', 'gender', NULL, 'male')",
        "INSERT INTO token_index (resource_type, resource_id, param, system, value)"
        " VALUES ('Observation', 'o2', 'status', NULL, 'final')",
        "DELETE FROM resource_history WHERE type = 'Patient' AND id = 'p1' AND version = 1",
        "UPDATE resource SET version = 7 WHERE type = 'Patient' AND id = 'p4'",
        untrigger,
        "UPDATE audit_log SET data = '{\"n\":99}' WHERE seq = 3",
    )
    code, out = _doctor("--database", url, "--full")
    assert code == 1, out
    report = diagnose(url, indexer, full=True)
    found = {(f.check, f.subject) for f in report.findings}
    assert {
        ("index", "Patient/p3"),
        ("index", "Patient/ghost"),
        ("index", "Observation/o2"),
        ("history", "Patient/p1"),
        ("current", "Patient/p4"),
        ("audit", "seq 3"),
    } <= found
    assert not any(f.check == "index" and f.subject == "Patient/p5" for f in report.findings)
    code, out = _doctor("--database", url, "--full", "--fix")
    assert code == 1  # history, current pointer and audit cannot be repaired by rebuilding
    after = diagnose(url, indexer, full=True)
    assert not [f for f in after.findings if f.check == "index"]
    assert {f.check for f in after.findings} == {"history", "current", "audit"}
    repo = open_store(url, indexer)
    try:  # the repaired index answers searches again
        from cmio.store import SearchClause, SearchQuery

        query = SearchQuery("Patient", (SearchClause("family", ("fam3",)),))
        assert "p3" in {r.id for r in repo.search(query).resources}
    finally:
        repo.close()


def test_unknown_schema_version_is_reported(new_url: UrlFactory, indexer: SearchIndexer) -> None:
    url = new_url()
    _store(url, indexer)
    _raw(url, "UPDATE schema_version SET version = 99 WHERE component = 'store'")
    code, out = _doctor("--database", url)
    assert code == 1 and "99" in out and "newer" in out


def test_sqlite_page_corruption_is_found(tmp_path: Path, indexer: SearchIndexer) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    _store(url, indexer)
    path = sqlite_path(url)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'resource_type_lu'"
        ).fetchone()[0]
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size + 8)
        f.write(b"\xff" * 64)
    code, out = _doctor("--database", url)
    assert code == 1 and "integrity" in out
    code, out = _doctor("--database", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and "no database" in out


@pytest.mark.postgres
def test_postgres_invalid_index_is_found(postgres_url: str, indexer: SearchIndexer) -> None:
    schema = f"d_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
    url = with_search_path(postgres_url, schema)
    _store(url, indexer)
    _raw(  # what an interrupted CREATE INDEX CONCURRENTLY leaves behind
        url,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid ="
        f" '{schema}.token_index_lookup'::regclass",
    )
    report = diagnose(url, indexer)
    assert [(f.check, f.subject) for f in report.findings] == [("integrity", "token_index_lookup")]
