"""``cmio view run``: a ViewDefinition over a Bulk folder or the store, to Parquet/CSV/NDJSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.store import open_repository

VIEW = {
    "resourceType": "ViewDefinition",
    "name": "names",
    "resource": "Patient",
    "select": [
        {"column": [{"name": "id", "path": "id", "type": "id"}]},
        {
            "forEach": "name",
            "column": [
                {"name": "family", "path": "family", "type": "string"},
                {"name": "given", "path": "given", "type": "string", "collection": True},
            ],
        },
    ],
}
PATIENTS = [
    {"resourceType": "Patient", "id": "a", "name": [{"family": "F", "given": ["G", "H"]}]},
    {"resourceType": "Patient", "id": "b", "name": [{"family": "E"}, {"family": "D"}]},
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    view = tmp_path / "view.json"
    view.write_text(json.dumps(VIEW))
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    (bulk / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in PATIENTS))
    return view, bulk


def test_folder_to_three_formats(tmp_path: Path, files: tuple[Path, Path]) -> None:
    view, bulk = files
    runner = CliRunner()
    out = tmp_path / "out"
    for name in ("v.parquet", "v.csv", "v.ndjson"):
        result = runner.invoke(
            app, ["view", "run", str(view), "--source", str(bulk), "--out", str(out / name)]
        )
        assert result.exit_code == 0, result.output
        assert "3 rows" in result.output
    table = pq.read_table(out / "v.parquet")
    assert sorted(table.to_pylist(), key=lambda r: r["family"]) == [
        {"id": "b", "family": "D", "given": []},
        {"id": "b", "family": "E", "given": []},
        {"id": "a", "family": "F", "given": ["G", "H"]},
    ]
    with (out / "v.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["family"]: r["given"] for r in rows} == {"F": '["G", "H"]', "E": "[]", "D": "[]"}
    lines = [json.loads(line) for line in (out / "v.ndjson").read_text().splitlines()]
    assert {"id": "a", "family": "F", "given": ["G", "H"]} in lines


def test_store_source_and_memory_engine(tmp_path: Path, files: tuple[Path, Path]) -> None:
    view, _ = files
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    repository = open_repository(url)
    with repository.transaction() as tx:
        for patient in json.loads(json.dumps(PATIENTS)):
            tx.create(patient, id=patient["id"])
    repository.close()
    out = tmp_path / "s.ndjson"
    for engine in ("duckdb", "memory"):
        result = CliRunner().invoke(
            app,
            ["view", "run", str(view), "--database", url, "--engine", engine, "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        assert len(out.read_text().splitlines()) == 3


def test_spark_writes_one_parquet_file_with_its_own_writer(
    tmp_path: Path, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--engine spark --out X.parquet``: Spark's writer, the rows never collected."""
    from cmio.views import spark_engine

    def no_collect(*args: object, **kwargs: object) -> None:
        raise AssertionError("the rows were collected into Python")

    monkeypatch.setattr(spark_engine, "spark_run", no_collect)
    view, bulk = files
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(
        app,
        ["view", "run", str(view), "--source", str(bulk), "--engine", "spark", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output
    rows = pq.read_table(out).to_pylist()
    assert sorted(rows, key=lambda r: r["family"]) == [
        {"id": "b", "family": "D", "given": []},
        {"id": "b", "family": "E", "given": []},
        {"id": "a", "family": "F", "given": ["G", "H"]},
    ]


def test_errors_are_reported(tmp_path: Path, files: tuple[Path, Path]) -> None:
    view, bulk = files
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resource": "Patient", "select": [{"forEach": 1}]}))
    result = runner.invoke(app, ["view", "run", str(bad), "--source", str(bulk)])
    assert result.exit_code == 2
    assert "ViewDefinition.select[0].forEach" in result.output
    result = runner.invoke(
        app, ["view", "run", str(view), "--source", str(bulk), "--out", str(tmp_path / "x.xlsx")]
    )
    assert result.exit_code != 0
    result = runner.invoke(app, ["view", "run", str(view), "--source", str(tmp_path / "none")])
    assert result.exit_code != 0
    result = runner.invoke(
        app,
        [
            "view",
            "run",
            str(view),
            "--source",
            str(bulk),
            "--engine",
            "nope",
            "--out",
            str(tmp_path / "n.csv"),
        ],
    )
    assert result.exit_code != 0
    assert "unknown view engine" in result.output
