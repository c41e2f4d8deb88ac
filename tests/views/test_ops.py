"""``$viewdefinition-run`` over HTTP (the router): inline and stored views, formats, filters."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.operations import default_operations
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.views.materialize import view_as_basic

VIEW = {
    "resourceType": "ViewDefinition",
    "name": "obs",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            ]
        }
    ],
}


def _obs(n: int, patient: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "code": {"text": "hr"},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": value},
    }


@pytest.fixture
def router(tmp_path: Path, model: Model) -> FhirRouter:
    env = build_env(f"sqlite:///{tmp_path / 'ops.db'}", Settings(validation="off"), model)
    with env.repository.transaction() as tx:
        tx.create(_obs(1, "p1", 72.5), id="o1")
        tx.create(_obs(2, "p2", 60.0), id="o2")
        tx.create(_obs(3, "p1", 81.0), id="o3")
        tx.create(view_as_basic(VIEW, id="obs-view"), id="obs-view")
    return FhirRouter(env, default_operations())


def _call(
    router: FhirRouter,
    path: str,
    params: list[dict[str, Any]] | None = None,
    query: list[tuple[str, str]] | None = None,
) -> FhirResponse:
    body = b""
    method = "GET"
    if params is not None:
        method = "POST"
        body = json.dumps({"resourceType": "Parameters", "parameter": params}).encode()
    request = FhirRequest(
        method=method,
        path=path,
        query=query or [],
        headers={"content-type": "application/fhir+json"},
        body=body,
    )
    return router.handle(request)


def test_inline_view_ndjson_and_json(router: FhirRouter) -> None:
    response = _call(router, "$viewdefinition-run", [{"name": "viewResource", "resource": VIEW}])
    assert response.status == 200, response.body
    assert ("content-type", "application/x-ndjson") in response.headers
    rows = [json.loads(line) for line in response.body.splitlines()]
    assert sorted((r["id"], r["patient"], r["value"]) for r in rows) == [
        ("o1", "p1", 72.5),
        ("o2", "p2", 60.0),
        ("o3", "p1", 81.0),
    ]
    response = _call(
        router,
        "$viewdefinition-run",
        [
            {"name": "viewResource", "resource": VIEW},
            {"name": "_format", "valueCode": "json"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
        ],
    )
    assert sorted(r["id"] for r in json.loads(response.body)) == ["o1", "o3"]


def test_stored_view_formats_and_limit(router: FhirRouter) -> None:
    response = _call(
        router, "Basic/obs-view/$viewdefinition-run", [{"name": "_format", "valueCode": "csv"}]
    )
    assert response.status == 200, response.body
    lines = response.body.decode().splitlines()
    assert lines[0] == '"id","patient","value"' and len(lines) == 4
    response = _call(
        router,
        "$viewdefinition-run",
        [
            {"name": "viewReference", "valueReference": {"reference": "Basic/obs-view"}},
            {"name": "_format", "valueCode": "parquet"},
            {"name": "_limit", "valueInteger": 2},
        ],
    )
    table = pq.read_table(io.BytesIO(response.body))
    assert table.num_rows == 2 and table.column_names == ["id", "patient", "value"]


def test_format_in_the_query(router: FhirRouter) -> None:
    """``GET ...$viewdefinition-run?_format=csv``: the operation, not the router, negotiates."""
    response = _call(router, "Basic/obs-view/$viewdefinition-run", query=[("_format", "csv")])
    assert response.status == 200, response.body
    assert response.body.decode().splitlines()[0] == '"id","patient","value"'
    response = _call(router, "Basic/obs-view", query=[("_format", "csv")])
    assert response.status == 406  # other interactions still answer JSON only


def test_inline_resources_replace_server_data(router: FhirRouter) -> None:
    response = _call(
        router,
        "$viewdefinition-run",
        [
            {"name": "viewResource", "resource": VIEW},
            {"name": "resource", "resource": _obs(9, "p9", 1.5)},
        ],
    )
    assert [json.loads(line)["id"] for line in response.body.splitlines()] == ["o9"]


def test_errors_are_operation_outcomes(router: FhirRouter) -> None:
    bad = {**VIEW, "select": [{"column": [{"name": "x"}]}]}
    response = _call(router, "$viewdefinition-run", [{"name": "viewResource", "resource": bad}])
    outcome = json.loads(response.body)
    assert response.status == 400 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"][0].startswith("ViewDefinition.select[0]")
    response = _call(router, "$viewdefinition-run", [{"name": "_format", "valueCode": "xml"}])
    assert response.status == 400 and b"_format" in response.body
    response = _call(router, "$viewdefinition-run", [])
    assert response.status == 400  # neither viewResource nor viewReference
    response = _call(router, "Basic/missing/$viewdefinition-run")
    assert response.status == 404
    response = _call(
        router,
        "$viewdefinition-run",
        query=[("viewReference", "Basic/obs-view"), ("_limit", "many")],
    )
    assert response.status == 400 and b"_limit" in response.body
