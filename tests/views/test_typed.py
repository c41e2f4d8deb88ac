"""The typed Parquet layout (cmio.views.typed) and the engines reading it.

Every answer over typed columns is compared with the same view over the JSON text;
the conformance suite runs on the typed layout too (engine ``duckdb_typed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq
import pytest

from cmio.model import Model
from cmio.views import DuckDbRunner, ViewDefinitionError, load_view, ndjson_to_parquet
from cmio.views.sources import resolve_source
from cmio.views.typed import (
    LAYOUT_KEY,
    LAYOUT_TYPED,
    TypedLayoutUnsupported,
    is_typed_parquet,
    structure,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

OBS_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "string"},
                {"name": "subject", "path": "subject.getReferenceKey(Patient)", "type": "string"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                {"name": "final", "path": "status = 'final'", "type": "boolean"},
            ]
        },
        {
            "forEachOrNull": "code.coding",
            "column": [
                {"name": "system", "path": "system", "type": "uri"},
                {"name": "code", "path": "code", "type": "code"},
                {"name": "n", "path": "%rowIndex", "type": "integer"},
            ],
        },
    ],
    "where": [{"path": "category.coding.where(code = 'vital-signs').exists()"}],
}
EXTENSION_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Patient",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {
                    "name": "race",
                    "path": "extension('http://example.org/race').value.ofType(string).first()",
                    "type": "string",
                },
            ]
        }
    ],
}
PATIENT_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Patient",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "active", "path": "active", "type": "boolean"},
                {"name": "family", "path": "name.first().family", "type": "string"},
                {"name": "given", "path": "name.given", "type": "string", "collection": True},
                {"name": "births", "path": "multipleBirth.ofType(integer)", "type": "integer"},
            ]
        }
    ],
}


def _observations(count: int) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"o{n}",
            "status": "final" if n % 3 else "amended",
            "category": [{"coding": [{"code": "vital-signs" if n % 4 else "laboratory"}]}],
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": f"{n % 7}-1"},
                    {"system": "urn:local", "code": f"L{n}"},
                ][: n % 3]
            },
            "subject": {"reference": f"Patient/p{n % 5}" if n % 6 else f"Group/g{n}"},
            "effectiveDateTime": f"2025-0{1 + n % 9}-1{n % 10}",
        }
        if n % 5:
            resource["valueQuantity"] = {"value": n * 1.25, "unit": "kg"}
        else:
            resource["valueString"] = "n/a"
        out.append(resource)
    return out


def _patients() -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Patient",
            "id": "p1",
            "active": True,
            "name": [{"family": "Ng", "given": ["Al", "Bo"]}, {"family": "Other"}],
            "multipleBirthInteger": 2,
            "extension": [{"url": "http://example.org/race", "valueString": "x"}],
        },
        {"resourceType": "Patient", "id": "p2", "active": False, "multipleBirthBoolean": False},
        {"resourceType": "Patient", "id": "p3"},
    ]


def _write(folder: Path, resources: list[dict[str, Any]]) -> Path:
    ndjson = folder / "ndjson"
    ndjson.mkdir(parents=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for rtype, lines in by_type.items():
        (ndjson / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ndjson


def _rows(table: Any) -> list[str]:
    return sorted(json.dumps(row, default=str, sort_keys=True) for row in table.to_pylist())


def test_structure_follows_the_model(model: Model) -> None:
    obs = structure(model, "Observation")
    assert obs["resourceType"] == "VARCHAR"
    assert obs["valueQuantity"]["value"] == "VARCHAR"  # decimals keep their text
    assert obs["code"]["coding"][0]["userSelected"] == "BOOLEAN"
    assert obs["valueInteger"] == "BIGINT"
    assert "extension" not in obs and "contained" not in obs and "_status" not in obs
    # a type inside itself stops: Reference.identifier.assigner is not expanded again
    assert "assigner" not in obs["subject"]["identifier"]
    assert structure(model, "Observation", ["id", "code"]) == {"id": "VARCHAR", "code": obs["code"]}
    with pytest.raises(TypedLayoutUnsupported, match="extension"):
        structure(model, "Observation", ["extension"])


def test_conversion_keeps_the_json_and_types_the_columns(model: Model, tmp_path: Path) -> None:
    resources = _observations(30) + _patients()
    ndjson = _write(tmp_path, resources)
    written = ndjson_to_parquet(ndjson, tmp_path / "pq", layout="typed", model=model)
    assert sorted(p.name for p in written) == ["Observation.parquet", "Patient.parquet"]
    assert is_typed_parquet(written)
    assert not is_typed_parquet(ndjson_to_parquet(ndjson, tmp_path / "plain"))
    table = pq.read_table(tmp_path / "pq" / "Patient.parquet")
    assert table.schema.metadata[LAYOUT_KEY.encode()] == LAYOUT_TYPED.encode()
    rows = table.to_pylist()
    assert [json.loads(r["resource"]) for r in rows] == _patients()
    assert rows[0]["name"][0]["given"] == ["Al", "Bo"]
    assert rows[0]["multipleBirthInteger"] == 2 and rows[1]["active"] is False
    with pytest.raises(ValueError, match="layout"):
        ndjson_to_parquet(ndjson, tmp_path / "x", layout="columns")


def test_conversion_refuses_values_contradicting_the_model(model: Model, tmp_path: Path) -> None:
    bad = {"resourceType": "Patient", "id": "p1", "name": "not a list of HumanName"}
    ndjson = _write(tmp_path, [bad])
    with pytest.raises(duckdb.Error, match="line 1"):
        ndjson_to_parquet(ndjson, tmp_path / "pq", layout="typed", model=model)


@pytest.mark.parametrize("view", [OBS_VIEW, PATIENT_VIEW], ids=["obs", "patients"])
def test_typed_equals_json_on_parquet_and_ndjson(
    model: Model, tmp_path: Path, view: dict[str, Any]
) -> None:
    ndjson = _write(tmp_path, _observations(200) + _patients())
    parquet = tmp_path / "pq"
    ndjson_to_parquet(ndjson, parquet, layout="typed", model=model)
    typed = DuckDbRunner(model, threads=2, layout="typed")
    plain = DuckDbRunner(model, threads=2, layout="json")
    expected = _rows(plain.run(view, ndjson))
    assert expected
    for source in (parquet, ndjson):
        sql = typed.sql(load_view(view), resolve_source(source, view["resource"]))
        assert "JSON_EXTRACT" not in sql.upper()
        assert _rows(typed.run(view, source)) == expected
        assert _rows(plain.run(view, source)) == expected
        assert _rows(DuckDbRunner(model, threads=2).run(view, source)) == expected


def test_what_the_typed_columns_lack_runs_on_the_json(model: Model, tmp_path: Path) -> None:
    ndjson = _write(tmp_path, _patients())
    parquet = tmp_path / "pq"
    ndjson_to_parquet(ndjson, parquet, layout="typed", model=model)
    auto = DuckDbRunner(model, threads=2)
    for source in (parquet, ndjson):
        rows = sorted(auto.run(EXTENSION_VIEW, source).to_pylist(), key=lambda r: r["id"])
        assert [r["race"] for r in rows] == ["x", None, None]
        with pytest.raises(TypedLayoutUnsupported):
            DuckDbRunner(model, layout="typed").run(EXTENSION_VIEW, source)
    # the JSON-text layout has no typed form
    plain = tmp_path / "plain"
    ndjson_to_parquet(ndjson, plain)
    with pytest.raises(TypedLayoutUnsupported):
        DuckDbRunner(model, layout="typed").run(PATIENT_VIEW, plain)
    with pytest.raises(ValueError, match="layout"):
        DuckDbRunner(model, layout="columns")


def test_ndjson_contradicting_the_model(model: Model, tmp_path: Path) -> None:
    """NDJSON whose values contradict the model: the typed read fails before any row,
    so ``auto`` reads the JSON (as before), and ``typed`` names the file and line."""
    bad = [*_patients(), {"resourceType": "Patient", "id": "p4", "multipleBirthInteger": "two"}]
    ndjson = _write(tmp_path, bad)
    rows = DuckDbRunner(model, threads=2).run(PATIENT_VIEW, ndjson).to_pylist()
    assert sorted(r["id"] for r in rows) == ["p1", "p2", "p3", "p4"]
    with pytest.raises(ViewDefinitionError, match="line 4"):
        DuckDbRunner(model, threads=2, layout="typed").run(PATIENT_VIEW, ndjson)


@pytest.mark.slow
def test_spark_reads_typed_parquet(spark: SparkSession, model: Model, tmp_path: Path) -> None:
    from cmio.views.spark_engine import spark_frame

    ndjson = _write(tmp_path, _observations(60) + _patients())
    parquet = tmp_path / "pq"
    ndjson_to_parquet(ndjson, parquet, layout="typed", model=model)
    for view in (OBS_VIEW, PATIENT_VIEW):
        expected = _rows(DuckDbRunner(model, threads=2, layout="json").run(view, ndjson))
        typed = spark_frame(view, parquet, spark, model=model, layout="typed").toArrow()
        assert _rows(typed) == expected
    # extension(): not in the typed columns, so the JSON text (auto) or a refusal (typed)
    auto = spark_frame(EXTENSION_VIEW, parquet, spark, model=model).toArrow()
    assert sorted(auto.column("race").to_pylist(), key=str) == [None, None, "x"]
    with pytest.raises(TypedLayoutUnsupported):
        spark_frame(EXTENSION_VIEW, parquet, spark, model=model, layout="typed")
