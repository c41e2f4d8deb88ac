"""``$viewdefinition-export`` over a real HTTP server: kick-off, poll, download, cancel."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.bulk.jobs import ExportJobs
from cmio.model import Model
from cmio.testing.server import ServerThread
from cmio.views.materialize import view_as_basic

ASYNC = {"prefer": "respond-async", "accept": "application/fhir+json"}
JSON = {**ASYNC, "content-type": "application/fhir+json"}
OBS_VIEW = {
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
                {"name": "codes", "path": "code.coding.code", "collection": True},
            ]
        }
    ],
}
PATIENT_VIEW = {
    "resourceType": "ViewDefinition",
    "name": "patients",
    "resource": "Patient",
    "status": "active",
    "select": [{"column": [{"name": "id", "path": "id"}, {"name": "gender", "path": "gender"}]}],
}


def _obs(n: int, patient: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": value},
    }


@pytest.fixture(scope="module")
def server(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("view-export")
    env = build_env(f"sqlite:///{tmp / 'store.db'}", Settings(validation="off"), model)
    env.exports = ExportJobs(tmp / "exports")
    with env.repository.transaction() as tx:
        for pid, gender in (("p1", "female"), ("p2", "male")):
            tx.create({"resourceType": "Patient", "id": pid, "gender": gender}, id=pid)
        tx.create(_obs(1, "p1", 72.5), id="o1")
        tx.create(_obs(2, "p2", 60.0), id="o2")
        tx.create(_obs(3, "p1", 81.0), id="o3")
        tx.create(view_as_basic(OBS_VIEW, id="obs-view"), id="obs-view")
        group = {
            "resourceType": "Group",
            "id": "g2",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": "Patient/p2"}}],
        }
        tx.create(group, id="g2")
    app = CmioApp(env)
    try:
        with ServerThread(app) as running:
            yield running
    finally:
        env.exports.close()
        app.close()


@pytest.fixture()
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as http:
        yield http


def _params(*params: dict[str, Any]) -> bytes:
    return json.dumps({"resourceType": "Parameters", "parameter": list(params)}).encode()


def _view(view: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "viewResource", "resource": view}]
    if name is not None:
        parts.insert(0, {"name": "name", "valueString": name})
    return {"name": "view", "part": parts}


def _values(body: dict[str, Any], name: str) -> list[Any]:
    return [
        next(v for k, v in p.items() if k.startswith("value"))
        for p in body["parameter"]
        if p["name"] == name
    ]


def _finish(client: httpx.Client, kick: httpx.Response) -> dict[str, Any]:
    assert kick.status_code == 202, kick.text
    location = kick.headers["content-location"]
    assert _values(kick.json(), "status") == ["accepted"]
    assert _values(kick.json(), "location") == [location]
    deadline = time.monotonic() + 60
    while True:
        poll = client.get(location)
        body: dict[str, Any] = poll.json()
        if poll.status_code == 200:
            break
        assert poll.status_code == 202, poll.text
        assert _values(body, "status") == ["in-progress"], body
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _values(body, "status") == ["completed"]
    assert _values(body, "exportId") == _values(kick.json(), "exportId")
    return body


def _outputs(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for parameter in body["parameter"]:
        if parameter["name"] == "output":
            parts = parameter["part"]
            name = next(p["valueString"] for p in parts if p["name"] == "name")
            out[name] = [p["valueUri"] for p in parts if p["name"] == "location"]
    return out


def test_two_views_to_ndjson_with_tracking_id(client: httpx.Client) -> None:
    kick = client.post(
        "/$viewdefinition-export",
        content=_params(
            {"name": "clientTrackingId", "valueString": "monthly-1"},
            _view(OBS_VIEW),
            _view(PATIENT_VIEW, "people"),
        ),
        headers=JSON,
    )
    body = _finish(client, kick)
    assert _values(body, "clientTrackingId") == ["monthly-1"]
    assert _values(body, "_format") == ["ndjson"]
    outputs = _outputs(body)
    assert set(outputs) == {"obs", "people"}
    got = client.get(outputs["obs"][0])
    assert got.status_code == 200 and got.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in got.content.splitlines()]
    assert sorted((r["id"], r["patient"], r["value"], r["codes"]) for r in rows) == [
        ("o1", "p1", 72.5, ["8867-4"]),
        ("o2", "p2", 60, ["8867-4"]),
        ("o3", "p1", 81, ["8867-4"]),
    ]
    people = client.get(outputs["people"][0]).content.splitlines()
    assert sorted(json.loads(line)["gender"] for line in people) == ["female", "male"]


def test_stored_view_to_parquet_and_csv_filtered(client: httpx.Client) -> None:
    kick = client.get(
        "/Basic/obs-view/$viewdefinition-export", params={"_format": "parquet"}, headers=ASYNC
    )
    outputs = _outputs(_finish(client, kick))
    got = client.get(outputs["obs"][0])
    assert got.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(got.content))
    assert sorted(table.column("id").to_pylist()) == ["o1", "o2", "o3"]
    assert table.column_names == ["id", "patient", "value", "codes"]

    reference = {"name": "viewReference", "valueReference": {"reference": "Basic/obs-view"}}
    kick = client.post(
        "/$viewdefinition-export",
        content=_params(
            {"name": "view", "part": [reference]},
            {"name": "_format", "valueCode": "csv"},
            {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
        ),
        headers=JSON,
    )
    text = client.get(_outputs(_finish(client, kick))["obs"][0]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["id"] for r in rows) == ["o1", "o3"]
    kick = client.post(
        "/$viewdefinition-export",
        content=_params(
            {"name": "view", "part": [reference]},
            {"name": "group", "valueReference": {"reference": "Group/g2"}},
            {"name": "_format", "valueCode": "json"},
        ),
        headers=JSON,
    )
    rows = client.get(_outputs(_finish(client, kick))["obs"][0]).json()
    assert [r["id"] for r in rows] == ["o2"]


def test_cancel_removes_the_job(client: httpx.Client, server: ServerThread) -> None:
    kick = client.post("/$viewdefinition-export", content=_params(_view(OBS_VIEW)), headers=JSON)
    location = kick.headers["content-location"]
    _finish(client, kick)
    assert client.delete(location).status_code == 202
    assert client.get(location).status_code == 404
    assert client.get("/$viewdefinition-export-status", params={"job": "0" * 32}).status_code == 404


def test_bad_requests_are_operation_outcomes(client: httpx.Client) -> None:
    no_async = client.post(
        "/$viewdefinition-export",
        content=_params(_view(OBS_VIEW)),
        headers={"content-type": "application/fhir+json"},
    )
    assert no_async.status_code == 400 and b"respond-async" in no_async.content
    bad = {**OBS_VIEW, "select": [{"column": [{"name": "x"}]}]}
    invalid = client.post(
        "/$viewdefinition-export", content=_params(_view(OBS_VIEW), _view(bad)), headers=JSON
    )
    outcome = invalid.json()
    assert invalid.status_code == 422 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"].startswith("Parameters.parameter[1]")
    assert outcome["issue"][0]["expression"][0].startswith("ViewDefinition.select[0]")
    missing = {"name": "viewReference", "valueReference": {"reference": "Basic/nope"}}
    response = client.post(
        "/$viewdefinition-export",
        content=_params({"name": "view", "part": [missing]}),
        headers=JSON,
    )
    assert response.status_code == 404
    for extra, status in (
        ({"name": "source", "valueString": "s3://bucket"}, 400),
        ({"name": "_format", "valueCode": "xml"}, 400),
        ({"name": "patient", "valueReference": {"reference": "Patient/ghost"}}, 404),
    ):
        response = client.post(
            "/$viewdefinition-export", content=_params(_view(OBS_VIEW), extra), headers=JSON
        )
        assert response.status_code == status, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
    assert (
        client.post("/$viewdefinition-export", content=_params(), headers=JSON).status_code == 400
    )


def test_failed_job_reports_failed(client: httpx.Client) -> None:
    """A path that fails on the data ends the job as ``failed`` with the reason."""
    failing = {
        **OBS_VIEW,
        # two values in a non-collection column: an error on the data, not in the view
        "select": [{"column": [{"name": "c", "path": "code.coding.code | code.coding.system"}]}],
    }
    kick = client.post("/$viewdefinition-export", content=_params(_view(failing)), headers=JSON)
    assert kick.status_code == 202
    location = kick.headers["content-location"]
    deadline = time.monotonic() + 60
    while True:
        poll = client.get(location)
        if _values(poll.json(), "status") != ["in-progress"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert poll.status_code == 202 and _values(poll.json(), "status") == ["failed"]
    assert _values(poll.json(), "error")


def test_deidentified_export(
    client: httpx.Client, model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cmio.security.deid import Deidentifier

    monkeypatch.setenv("CMIO_DEID_KEY", "0f" * 32)
    deid = Deidentifier.from_environment(model)
    kick = client.post(
        "/$viewdefinition-export",
        params={"_deidentify": "true"},
        content=_params(_view(OBS_VIEW)),
        headers=JSON,
    )
    rows = [
        json.loads(line)
        for line in client.get(_outputs(_finish(client, kick))["obs"][0]).content.splitlines()
    ]
    assert sorted((r["id"], r["patient"], r["value"]) for r in rows) == sorted(
        (deid.pseudonym("Observation", o), deid.pseudonym("Patient", p), v)
        for o, p, v in (("o1", "p1", 72.5), ("o2", "p2", 60), ("o3", "p1", 81))
    )
    monkeypatch.delenv("CMIO_DEID_KEY")
    off = client.post(
        "/$viewdefinition-export",
        params={"_deidentify": "true"},
        content=_params(_view(OBS_VIEW)),
        headers=JSON,
    )
    assert off.status_code == 501 and "not configured" in off.text
