"""Fixtures for the admin tests: a fresh store URL per test on both backends."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cmio.indexing import SearchIndexer
from cmio.indexing.tables import INDEX_TABLES
from cmio.model import load_model
from cmio.security.audit import AuditLog, verify_rows
from cmio.store import Repository, SearchClause, SearchQuery, open_repository
from cmio.testing.pg import with_search_path

UrlFactory = Callable[[], str]


@pytest.fixture(scope="session")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UrlFactory]:
    """``new_url()``: the URL of a fresh, empty store location on this backend."""
    if request.param == "sqlite":

        def make() -> str:
            return f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"

    else:
        base: str = request.getfixturevalue("postgres_url")

        def make() -> str:
            schema = f"a_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            return with_search_path(base, schema)

    yield make


def open_store(url: str, indexer: SearchIndexer) -> Repository:
    return open_repository(url, indexer=indexer)


def populate(repo: Repository, n: int = 20) -> None:
    """Patients with observations, updates, a deletion and audit records."""
    log = AuditLog(repo)
    for i in range(n):
        with repo.transaction() as tx:
            patient = {
                "resourceType": "Patient",
                "id": f"p{i}",
                "name": [{"family": f"Fam{i % 4}", "given": ["Ann"]}],
                "birthDate": f"19{50 + i:02d}-01-02",
                "text": {"status": "generated", "div": f"<div>patient number {i}</div>"},
            }
            tx.update(patient)
            tx.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/p{i}"},
                    "valueQuantity": {"value": 60 + i, "unit": "/min", "code": "/min"},
                },
                id=f"o{i}",
            )
            log.append(tx, [{"recorded": f"2024-01-01T00:00:{i:02d}Z", "n": i}])
    with repo.transaction() as tx:
        tx.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        tx.delete("Observation", "o2")


def _rows(repo: Repository, sql: str) -> list[tuple[Any, ...]]:
    with repo.read_transaction() as tx:
        rows: list[tuple[Any, ...]] = tx._fetchall(sql, ())  # type: ignore[attr-defined]
    return rows


def _digest(value: Any) -> str:
    if value is None:
        return ""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return hashlib.sha256(raw).hexdigest()


def fingerprint(repo: Repository) -> dict[str, Any]:
    """Everything a restore must keep: resources, history, index rows, searches, audit."""
    out: dict[str, Any] = {}
    out["resource"] = [
        (r[0], r[1], r[2], bool(r[3]), _digest(r[4]))
        for r in _rows(repo, "SELECT type, id, version, deleted, data FROM resource ORDER BY 1, 2")
    ]
    out["history"] = [
        (r[0], r[1], r[2], r[3], bool(r[4]), r[5], _digest(r[6]))
        for r in _rows(
            repo,
            "SELECT seq, type, id, version, deleted, method, data FROM resource_history"
            " ORDER BY seq",
        )
    ]
    for table in INDEX_TABLES:
        cols = ", ".join(["resource_type", "resource_id", "param", *(c[0] for c in table.columns)])
        out[table.name] = sorted(
            _rows(repo, f"SELECT {cols} FROM {table.name}"), key=lambda r: tuple(map(str, r))
        )
    searches = [
        SearchQuery("Patient", (SearchClause("family", ("fam1",)),)),
        SearchQuery("Observation", (SearchClause("value-quantity", ("gt70",)),)),
        SearchQuery("Patient", (SearchClause("_text", ("number",)),)),
    ]
    out["search"] = [sorted(r.id for r in repo.search(q).resources) for q in searches]
    report = verify_rows(AuditLog(repo).rows())
    out["audit"] = (report.ok, report.count, report.head)
    return out
