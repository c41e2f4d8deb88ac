"""Bulk Data $export over a real HTTP server: kick-off, poll, download, cancel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.bulk.importer import import_paths
from cmio.bulk.jobs import ExportJobs
from cmio.model import Model

from .conftest import ServerThread, new_database

PREFER = {"prefer": "respond-async", "accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def server(
    backend: str,
    synthea: Path,
    model: Model,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("export")
    url = new_database(backend, request, tmp)
    env = build_env(url, model=model)
    env.exports = ExportJobs(tmp / "exports")
    import_paths(env, [synthea / "bulk-ndjson-10-patients-partial"])
    app = CmioApp(env)
    try:
        with ServerThread(app) as running:
            running.exports_root = env.exports.root  # type: ignore[attr-defined]
            yield running
    finally:
        env.exports.close()
        app.close()


@pytest.fixture()
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as http:
        yield http


def run_export(client: httpx.Client, path: str, **params: str) -> dict[str, object]:
    kick = client.get(path, params=params, headers=PREFER)
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"]
    deadline = time.monotonic() + 30
    while True:
        poll = client.get(status_url)
        if poll.status_code == 200:
            break
        assert poll.status_code == 202, poll.text
        assert "x-progress" in poll.headers
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert poll.headers["content-type"].startswith("application/json")
    manifest: dict[str, object] = poll.json()
    manifest["_status_url"] = status_url
    return manifest


def download(client: httpx.Client, manifest: dict[str, object]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:  # type: ignore[attr-defined]
        got = client.get(item["url"])
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/fhir+ndjson")
        rows = [orjson.loads(line) for line in got.content.splitlines()]
        assert len(rows) == item["count"]
        assert {r["resourceType"] for r in rows} == {item["type"]}
        out[item["type"]] = rows
    return out


def test_kickoff_needs_respond_async(client: httpx.Client) -> None:
    got = client.get("$export")
    assert got.status_code == 400
    assert got.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "params",
    [{"_outputFormat": "text/csv"}, {"_type": "Patient,NoSuchType"}, {"_since": "yesterday"}],
)
def test_kickoff_rejects_bad_parameters(client: httpx.Client, params: dict[str, str]) -> None:
    got = client.get("$export", params=params, headers=PREFER)
    assert got.status_code == 400
    assert got.json()["issue"][0]["expression"] == [next(iter(params))]


def test_system_export_with_type(client: httpx.Client) -> None:
    manifest = run_export(
        client, "$export", _type="Patient,Practitioner", _outputFormat="application/fhir+ndjson"
    )
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert "_type=Patient%2CPractitioner" in str(manifest["request"])
    files = download(client, manifest)
    assert {t: len(rows) for t, rows in files.items()} == {"Patient": 13, "Practitioner": 43}


def test_since_keeps_recent_changes(client: httpx.Client) -> None:
    patient = client.get("Patient", params={"_count": "1"}).json()["entry"][0]["resource"]
    since = patient["meta"]["lastUpdated"]
    time.sleep(0.01)
    patient["gender"] = "other" if patient.get("gender") != "other" else "unknown"
    put = client.put(
        f"Patient/{patient['id']}", json=patient, headers={"content-type": "application/fhir+json"}
    )
    assert put.status_code == 200, put.text
    newer = put.json()["meta"]["lastUpdated"]
    assert newer > since
    manifest = run_export(client, "$export", _type="Patient", _since=newer)
    files = download(client, manifest)
    assert [r["id"] for r in files["Patient"]] == [patient["id"]]
    assert manifest["transactionTime"] >= newer


def test_patient_level_export(client: httpx.Client) -> None:
    manifest = run_export(client, "Patient/$export", _type="Patient,Encounter,Organization")
    files = download(client, manifest)
    assert len(files["Patient"]) == 13
    assert len(files["Encounter"]) == 1215
    assert "Organization" not in files  # not in the Patient compartment


def test_group_level_export(client: httpx.Client) -> None:
    patients = [
        e["resource"]["id"] for e in client.get("Patient", params={"_count": "2"}).json()["entry"]
    ]
    group = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in patients],
    }
    made = client.post("Group", json=group, headers={"content-type": "application/fhir+json"})
    assert made.status_code == 201, made.text
    manifest = run_export(client, f"Group/{made.json()['id']}/$export", _type="Patient,Encounter")
    files = download(client, manifest)
    assert sorted(r["id"] for r in files["Patient"]) == sorted(patients)
    assert files["Encounter"]
    assert {r["subject"]["reference"] for r in files["Encounter"]} <= {
        f"Patient/{p}" for p in patients
    }
    assert client.get("Group/does-not-exist/$export", headers=PREFER).status_code == 404


def test_delete_cancels_and_removes_files(client: httpx.Client, server: ServerThread) -> None:
    manifest = run_export(client, "$export", _type="Condition")
    status_url = str(manifest["_status_url"])
    file_url = manifest["output"][0]["url"]  # type: ignore[index]
    assert client.get(file_url).status_code == 200
    assert client.delete(status_url).status_code == 202
    assert client.get(status_url).status_code == 404
    assert client.get(file_url).status_code == 404
    assert client.delete(status_url).status_code == 404


def test_delete_while_running_removes_everything(
    client: httpx.Client, server: ServerThread
) -> None:
    kick = client.get("$export", headers=PREFER)
    assert kick.status_code == 202
    status_url = kick.headers["content-location"]
    job_dir = Path(server.exports_root) / status_url.rsplit("/", 1)[1]  # type: ignore[attr-defined]
    assert client.delete(status_url).status_code == 202
    assert client.get(status_url).status_code == 404
    deadline = time.monotonic() + 20
    while job_dir.exists():
        assert time.monotonic() < deadline, "job files were not removed"
        time.sleep(0.05)
