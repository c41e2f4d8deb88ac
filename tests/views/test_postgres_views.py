"""Views inside PostgreSQL: over the store's jsonb table, as SQL views and materialized views."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from cmio.store.postgres import PostgresRepository
from cmio.testing import pg
from cmio.views import run
from cmio.views.postgres_engine import PostgresViewError, create_view, postgres_sql

VIEW = {
    "resourceType": "ViewDefinition",
    "name": "obs_values",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            ]
        },
        {"forEach": "code.coding", "column": [{"name": "code", "path": "code"}]},
    ],
}


def _obs(n: int, value: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/p{n}"},
        "valueQuantity": {"value": float(value), "unit": "/min"},
    }


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresRepository]:
    schema = "views_pg"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    repository = PostgresRepository(pg.with_search_path(postgres_url, schema))
    with repository.transaction() as tx:
        tx.create(_obs(1, "72.5"), id="o1")
        tx.create(_obs(2, "60"), id="o2")
        tx.create({"resourceType": "Patient", "id": "p1"}, id="p1")
    yield repository
    repository.close()


def test_run_over_the_store(store: PostgresRepository) -> None:
    table = run(VIEW, store, engine="postgres")
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": "o1", "patient": "p1", "value": Decimal("72.5"), "code": "8867-4"},
        {"id": "o2", "patient": "p2", "value": Decimal("60"), "code": "8867-4"},
    ]
    assert run(VIEW, store, engine="postgres", limit=1).num_rows == 1


def test_sql_view_and_materialized_view(store: PostgresRepository) -> None:
    assert create_view(VIEW, store.url) == "obs_values"
    create_view(VIEW, store.url, "obs_mat", materialized=True)
    with store.transaction() as tx:
        tx.create(_obs(3, "88"), id="o3")
        tx.delete("Observation", "o1")
    with psycopg.connect(store.url, autocommit=True) as conn:
        live = conn.execute("SELECT id, value FROM obs_values ORDER BY id").fetchall()
        assert live == [("o2", Decimal("60")), ("o3", Decimal("88"))]
        stale = conn.execute("SELECT id FROM obs_mat ORDER BY id").fetchall()
        assert stale == [("o1",), ("o2",)]
        conn.execute("REFRESH MATERIALIZED VIEW obs_mat")
        fresh = conn.execute("SELECT id FROM obs_mat ORDER BY id").fetchall()
        assert fresh == [("o2",), ("o3",)]


def test_errors_are_named(store: PostgresRepository) -> None:
    several = {
        "resource": "Observation",
        "select": [{"column": [{"name": "c", "path": "code.coding.code"}]}],
    }
    with store.transaction() as tx:
        doubled = _obs(4, "1")
        doubled["code"] = {"coding": [{"code": "a"}, {"code": "b"}]}
        tx.create(doubled, id="o4")
    with pytest.raises(PostgresViewError, match="several values"):
        run(several, store, engine="postgres")
    with pytest.raises(ValueError, match="usable SQL name"):
        create_view({**VIEW, "name": "bad name;"}, store.url)
    with pytest.raises(ValueError, match="PostgreSQL store"):
        run(VIEW, [_obs(1, "1")], engine="postgres")
    sql = postgres_sql(VIEW)
    assert 'FROM "resource" WHERE "type" = \'Observation\' AND NOT "deleted"' in sql
