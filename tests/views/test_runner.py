"""cmio.views.run over every kind of source, and errors that name the element."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cmio.model import Model
from cmio.store import Repository, open_repository
from cmio.views import (
    DuckDbRunner,
    SourceError,
    UnsupportedExpression,
    ViewDefinitionError,
    ndjson_to_parquet,
    run,
)

OBSERVATION_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "observations",
    "resource": "Observation",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "string"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            ]
        },
        {
            "forEach": "code.coding",
            "column": [
                {"name": "system", "path": "system", "type": "uri"},
                {"name": "code", "path": "code", "type": "code"},
                {"name": "coding_index", "path": "%rowIndex", "type": "integer"},
            ],
        },
    ],
}
PATIENT_VIEW: dict[str, Any] = {
    "resource": "Patient",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "gender", "path": "gender", "type": "code"},
                {"name": "birth", "path": "birthDate", "type": "date"},
                {"name": "given", "path": "name.given", "type": "string", "collection": True},
            ]
        }
    ],
    "where": [{"path": "active"}],
}


def _patients(n: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Patient",
            "id": f"p{i}",
            "active": i % 3 != 0,
            "gender": ("female", "male")[i % 2],
            "birthDate": f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}",
            "name": [{"family": f"F{i}", "given": [f"G{i}", "X"][: 1 + i % 2]}],
        }
        for i in range(n)
    ]


def _observations(n: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "subject": {"reference": f"Patient/p{i % 7}"},
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "8480-6"}, {"code": f"c{i}"}][
                    : 1 + i % 2
                ]
            },
            "valueQuantity": {"value": Decimal("120.25") + i, "unit": "mm[Hg]"},
            "effectiveDateTime": f"2024-05-{1 + i % 28:02d}T08:30:00Z",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return json.loads(json.dumps(_patients(30) + _observations(60), default=float))


@pytest.fixture(scope="module")
def runner(model: Model) -> DuckDbRunner:
    return DuckDbRunner(model, threads=2)


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _write_bulk(folder: Path, resources: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    (folder / "Patient.ndjson").write_text("".join(json.dumps(r) + "\n" for r in patients))
    half = len(observations) // 2
    (folder / "Observation.1.ndjson").write_text(
        "".join(json.dumps(r) + "\n" for r in observations[:half])
    )
    with gzip.open(folder / "Observation.2.ndjson.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in observations[half:])


def test_duckdb_agrees_with_memory(resources: list[dict[str, Any]], runner: DuckDbRunner) -> None:
    for view in (OBSERVATION_VIEW, PATIENT_VIEW):
        expected = run(view, resources, engine="memory")
        actual = runner.run(view, resources)
        assert actual.schema == expected.schema
        assert _sorted(actual) == _sorted(expected)
        assert actual.num_rows > 0
    table = runner.run(OBSERVATION_VIEW, resources)
    row = next(r for r in table.to_pylist() if r["id"] == "o1" and r["coding_index"] == 1)
    assert row == {
        "id": "o1",
        "patient": "p1",
        "value": Decimal("121.25"),
        "effective": "2024-05-02T08:30:00Z",
        "system": None,
        "code": "c1",
        "coding_index": 1,
    }
    assert table.schema.field("value").type == pa.decimal128(38, 10)
    patients = runner.run(PATIENT_VIEW, resources)
    assert patients.num_rows == 20  # where active
    assert patients.schema.field("given").type == pa.list_(pa.string())


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_bulk_folder_parquet_and_single_file(
    tmp_path: Path, resources: list[dict[str, Any]], engine: str
) -> None:
    bulk = tmp_path / "bulk"
    _write_bulk(bulk, resources)
    expected = _sorted(run(OBSERVATION_VIEW, resources, engine="memory"))
    assert _sorted(run(OBSERVATION_VIEW, bulk, engine=engine)) == expected
    parquet = tmp_path / "parquet"
    written = ndjson_to_parquet(bulk, parquet)
    assert sorted(p.name for p in written) == ["Observation.parquet", "Patient.parquet"]
    assert _sorted(run(OBSERVATION_VIEW, parquet, engine=engine)) == expected
    assert (
        _sorted(run(OBSERVATION_VIEW, str(parquet / "Observation.parquet"), engine=engine))
        == expected
    )
    mixed = tmp_path / "mixed" / "data.ndjson"
    mixed.parent.mkdir()
    mixed.write_text("".join(json.dumps(r) + "\n" for r in resources))
    assert _sorted(run(OBSERVATION_VIEW, mixed, engine=engine)) == expected
    assert _sorted(run(OBSERVATION_VIEW, mixed.parent, engine=engine)) == expected
    empty = run({**PATIENT_VIEW, "resource": "Encounter", "where": []}, bulk, engine=engine)
    assert empty.num_rows == 0
    assert empty.column_names == ["id", "gender", "birth", "given"]


@pytest.fixture
def store(tmp_path: Path, resources: list[dict[str, Any]]) -> Iterator[Repository]:
    repository = open_repository(f"sqlite:///{tmp_path / 'views.db'}")
    with repository.transaction() as tx:
        for resource in copy.deepcopy(resources):
            tx.create(resource, id=resource["id"])
        tx.delete("Observation", "o0")
    yield repository
    repository.close()


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_store_source_reads_current_resources(
    store: Repository, resources: list[dict[str, Any]], engine: str
) -> None:
    expected = _sorted(run(OBSERVATION_VIEW, resources[:30] + resources[31:], engine="memory"))
    table = run(OBSERVATION_VIEW, store, engine=engine)
    assert _sorted(table) == expected
    assert "o0" not in table.column("id").to_pylist()


def test_view_from_a_file_and_pandas(tmp_path: Path, resources: list[dict[str, Any]]) -> None:
    path = tmp_path / "view.json"
    path.write_text(json.dumps(PATIENT_VIEW))
    table = run(path, resources)
    assert table.num_rows == 20
    with pytest.raises(ViewDefinitionError, match="cannot read"):
        run(tmp_path / "missing.json", resources)
    with pytest.raises(ValueError, match="unknown view engine"):
        run(PATIENT_VIEW, resources, engine="nope")
    with pytest.raises(SourceError):
        run(PATIENT_VIEW, tmp_path / "nowhere")


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_several_values_without_collection_is_an_error(
    resources: list[dict[str, Any]], engine: str
) -> None:
    view = {
        "resource": "Patient",
        "select": [{"column": [{"name": "given", "path": "name.given", "type": "string"}]}],
    }
    with pytest.raises(ViewDefinitionError) as info:
        run(view, resources, engine=engine)
    assert "ViewDefinition.select[0].column[0].path" in str(info.value)
    assert info.value.element == "ViewDefinition.select[0].column[0].path"


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_where_must_be_boolean(resources: list[dict[str, Any]], engine: str) -> None:
    view = {**PATIENT_VIEW, "where": [{"path": "gender"}]}
    with pytest.raises(ViewDefinitionError) as info:
        run(view, resources, engine=engine)
    assert info.value.element == "ViewDefinition.where[0].path"


def test_functions_outside_the_sql_subset_are_refused_by_name(
    resources: list[dict[str, Any]], runner: DuckDbRunner
) -> None:
    view = {
        "resource": "Patient",
        "select": [{"column": [{"name": "up", "path": "gender.upper()", "type": "string"}]}],
    }
    with pytest.raises(UnsupportedExpression) as info:
        runner.run(view, resources)
    assert "upper()" in str(info.value)
    assert info.value.element == "ViewDefinition.select[0].column[0].path"
    memory = run(view, resources, engine="memory")
    assert set(memory.column("up").to_pylist()) == {"FEMALE", "MALE"}
    view["select"][0]["column"][0]["path"] = "%resource.id"
    with pytest.raises(UnsupportedExpression, match="%resource"):
        runner.run(view, resources)
    assert run(view, resources, engine="memory").num_rows == 30


def test_unknown_resource_type(resources: list[dict[str, Any]], runner: DuckDbRunner) -> None:
    view = {**PATIENT_VIEW, "resource": "Patientt", "where": []}
    for engine in ("memory", "duckdb"):
        with pytest.raises(ViewDefinitionError, match="unknown resource type"):
            run(view, resources, engine=engine)


def test_sql_is_one_vectorized_query(runner: DuckDbRunner) -> None:
    from cmio.views import load_view
    from cmio.views.sources import Source

    source = Source("ndjson", (Path("Observation.ndjson"),), single_type=True)
    view = load_view(OBSERVATION_VIEW)
    plans = dict(runner.plans(view, source))
    assert set(plans) == {"json"}  # NDJSON: the JSON functions unless typed is asked for
    plans.update(DuckDbRunner(runner.compiler.model, layout="typed").plans(view, source))
    sql = plans["json"].upper()
    assert sql.count("READ_NDJSON_OBJECTS") == 1
    assert "UNNEST" in sql and "LIST_TRANSFORM" in sql
    assert "RESOURCETYPE" not in sql  # one type per file: no filter
    typed = plans["typed"].upper()  # read_json parses each line into the typed columns
    assert typed.count("READ_JSON(") == 1 and "JSON_EXTRACT" not in typed
    assert "UNNEST" in typed and "RESOURCETYPE" not in typed


def _questionnaire(depth: int) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": str(depth)}
    for level in range(depth - 1, 0, -1):
        item = {"linkId": str(level), "item": [item]}
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "q",
        "status": "completed",
        "item": [item],
    }


def test_repeat_depth(runner: DuckDbRunner) -> None:
    from cmio.views.repeat import REPEAT_DEPTH

    view = {
        "resource": "QuestionnaireResponse",
        "select": [{"repeat": ["item"], "column": [{"name": "link", "path": "linkId"}]}],
    }
    deep = [_questionnaire(REPEAT_DEPTH)]
    assert _sorted(runner.run(view, deep)) == _sorted(run(view, deep, engine="memory"))
    assert runner.run(view, deep).num_rows == REPEAT_DEPTH
    deeper = [_questionnaire(REPEAT_DEPTH + 1)]
    assert run(view, deeper, engine="memory").num_rows == REPEAT_DEPTH + 1
    with pytest.raises(ViewDefinitionError) as info:
        runner.run(view, deeper)
    assert info.value.element == "ViewDefinition.select[0].repeat"
    assert "deeper than" in str(info.value)
