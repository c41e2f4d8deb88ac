"""Materialized views in the analytics database, refreshed incrementally from the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.views import ViewDefinitionError
from cmio.views.materialize import (
    KEY_COLUMN,
    Analytics,
    stored_views,
    view_as_basic,
    view_from_basic,
)

VIEW = {
    "resourceType": "ViewDefinition",
    "name": "patient_names",
    "resource": "Patient",
    "status": "active",
    "select": [
        {"column": [{"name": "id", "path": "getResourceKey()"}]},
        {"forEach": "name", "column": [{"name": "family", "path": "family"}]},
    ],
}


def _patient(id: str, *families: str) -> dict[str, object]:
    return {"resourceType": "Patient", "id": id, "name": [{"family": f} for f in families]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Repository]:
    repository = open_repository(f"sqlite:///{tmp_path / 'cmio.db'}")
    yield repository
    repository.close()


def _rows(analytics: Analytics, name: str) -> list[tuple[str, str, str]]:
    with analytics.connect() as con:
        return [
            (r[0], r[1], r[2])
            for r in con.execute(
                f'SELECT {KEY_COLUMN}, id, family FROM "{name}" ORDER BY id, family'
            ).fetchall()
        ]


def test_incremental_refresh(store: Repository, tmp_path: Path) -> None:
    with store.transaction() as tx:
        tx.create(_patient("a", "Ames", "Alda"), id="a")
    time.sleep(0.002)  # lastUpdated has millisecond precision: "a" strictly before the watermark
    with store.transaction() as tx:
        tx.create(_patient("b", "Bell"), id="b")
        tx.create(_patient("c", "Cole"), id="c")
    analytics = Analytics(tmp_path / "analytics.duckdb")
    first = analytics.materialize(VIEW, store)
    assert (first.rebuilt, first.resources, first.rows) == (True, 3, 4)
    assert _rows(analytics, "patient_names")[0] == ("a", "a", "Alda")

    with store.transaction() as tx:
        tx.update(_patient("b", "Brown", "Black"))
        tx.delete("Patient", "c")
        tx.create(_patient("d", "Dunn"), id="d")
    second = analytics.materialize(VIEW, store)
    assert not second.rebuilt
    assert second.resources == 2  # b and d only (a is unchanged)
    assert second.deleted == 1
    assert [(r[1], r[2]) for r in _rows(analytics, "patient_names")] == [
        ("a", "Alda"),
        ("a", "Ames"),
        ("b", "Black"),
        ("b", "Brown"),
        ("d", "Dunn"),
    ]
    third = analytics.materialize(VIEW, store)
    # only the resources written at the watermark instant itself are read again
    assert not third.rebuilt and third.resources <= 2 and third.rows == 5
    assert analytics.tables() == [("patient_names", "Patient", 5, third.watermark)]

    changed = {**VIEW, "select": [{"column": [{"name": "id", "path": "id"}]}]}
    rebuilt = analytics.materialize(changed, store)
    assert rebuilt.rebuilt and rebuilt.rows == 3


def test_views_stored_as_basic(store: Repository, tmp_path: Path) -> None:
    basic = view_as_basic(VIEW, id="names")
    assert view_from_basic(basic) == VIEW
    with store.transaction() as tx:
        tx.create(basic, id="names")
        tx.create({"resourceType": "Basic", "code": {"text": "other"}}, id="other")
        tx.create(_patient("a", "Ames"), id="a")
    assert [(i, v["name"]) for i, v in stored_views(store)] == [("names", "patient_names")]
    refreshed = Analytics(tmp_path / "a.duckdb").refresh_all(store)
    assert [(r.name, r.rows) for r in refreshed] == [("patient_names", 1)]


def test_bad_definitions_are_refused(store: Repository, tmp_path: Path) -> None:
    with pytest.raises(ViewDefinitionError):
        view_as_basic({"resource": "Patient"})
    analytics = Analytics(tmp_path / "a.duckdb")
    with pytest.raises(ViewDefinitionError, match="usable table name"):
        analytics.materialize({**VIEW, "name": "bad name"}, store)
    reserved = {**VIEW, "select": [{"column": [{"name": "cmioresourcekey", "path": "id"}]}]}
    with pytest.raises(ViewDefinitionError, match="reserved"):
        analytics.materialize(reserved, store)


def test_cli(store: Repository, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from cmio.cli.main import app

    with store.transaction() as tx:
        tx.create(_patient("a", "Ames"), id="a")
    view_file = tmp_path / "view.json"
    view_file.write_text(json.dumps(VIEW))
    database = f"sqlite:///{tmp_path / 'cmio.db'}"
    target = tmp_path / "analytics.duckdb"
    args = ["view-materialize", "--database", database, "--analytics", str(target)]
    result = CliRunner().invoke(app, [*args, str(view_file), "--save"])
    assert result.exit_code == 0, result.output
    assert "patient_names: 1 rows (rebuilt" in result.output
    again = CliRunner().invoke(app, args)  # the stored view, refreshed
    assert again.exit_code == 0, again.output
    assert "patient_names: 1 rows (refreshed" in again.output
