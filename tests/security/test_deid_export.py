"""``--deidentify`` end to end: cmio export, Bulk ``$export``, cmio view run, view-materialize.

The source is a store loaded through the real import path (a handful of Synthea
patients, and a small synthetic health system); the output bytes are scanned for
every identifying value of the stored input (names, identifiers, phones, emails,
address lines, cities, full ZIP codes, ids), every output date must be an input
date moved by the patient's offset, and every reference must resolve.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cmio.api.context import RequestContext
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.bulk.importer import import_paths
from cmio.cli.main import app
from cmio.model import Model, load_model
from cmio.security.deid import Deidentifier
from cmio.security.grant import AccessGrant
from cmio.store import open_repository
from cmio.synth import SynthConfig, generate
from tests.security.deid_checks import days_of, gather, scan, shift

SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4"
KEY = b"a de-identification key of 32 b"
EXPORT = ("export", "--deidentify")
REF = re.compile(r'"reference":"([A-Z][A-Za-z]+)/([^"]+)"')


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "deid.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def deid(model: Model) -> Deidentifier:
    return Deidentifier(KEY, model)


def stored(url: str) -> list[dict[str, Any]]:
    repository = open_repository(url)
    try:
        return [orjson.loads(s.data) for s in repository.iter_current() if s.data]
    finally:
        repository.close()


@pytest.fixture(scope="module")
def synthea_url(tmp_path_factory: pytest.TempPathFactory, model: Model) -> str:
    bundles = sorted((SYNTHEA / "bundles").glob("*.json"))
    if not bundles:
        pytest.fail(f"Synthea test data missing at {SYNTHEA}")
    url = f"sqlite:///{tmp_path_factory.mktemp('synthea') / 'store.db'}"
    import_paths(url, bundles[:4], model=model)
    return url


@pytest.fixture(scope="module")
def health_system_url(tmp_path_factory: pytest.TempPathFactory, model: Model) -> str:
    tmp = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(patients=6, out=tmp / "synth", years=0.5, seed=11))
    url = f"sqlite:///{tmp / 'store.db'}"
    import_paths(url, [tmp / "synth"], model=model)
    return url


def check(deid: Deidentifier, inputs: list[dict[str, Any]], outputs: list[bytes]) -> None:
    """Nothing identifying survives; dates moved by each patient's offset; references resolve."""
    blob = b"".join(outputs)
    secrets = gather(inputs)
    assert secrets.names and secrets.identifiers and secrets.lines and secrets.zips
    assert scan(blob, secrets) == []
    by_id = {r["id"]: r for r in (orjson.loads(line) for line in outputs)}
    patients: set[str] = set()
    for source in inputs:
        out = by_id.get(deid.pseudonym(source["resourceType"], source["id"]))
        if out is None:
            assert source["resourceType"] == "Binary"
            continue
        owner = deid.patient_of(source)
        days = deid.offset_days(owner or f"{source['resourceType']}/{source['id']}")
        allowed = {shift(d, days) for d in days_of(source)}
        assert set(days_of(out)) <= allowed, source["resourceType"]
        if owner:
            patients.add(owner)
    assert len(patients) >= 4
    for ref_type, ref_id in REF.findall(blob.decode()):
        assert by_id.get(ref_id, {}).get("resourceType") == ref_type, f"{ref_type}/{ref_id}"


def export_cli(url: str, out: Path, key_file: Path) -> list[bytes]:
    done = CliRunner().invoke(
        app,
        [*EXPORT, "--database", url, "--out", str(out), "--deid-key-file", str(key_file)],
    )
    assert done.exit_code == 0, done.output
    return [
        line + b"\n" for f in sorted(out.glob("*.ndjson")) for line in f.read_bytes().splitlines()
    ]


def test_cli_export_of_synthea_patients(
    synthea_url: str, key_file: Path, deid: Deidentifier, tmp_path: Path
) -> None:
    outputs = export_cli(synthea_url, tmp_path / "out", key_file)
    check(deid, stored(synthea_url), outputs)


def test_cli_export_of_the_synthetic_health_system(
    health_system_url: str, key_file: Path, deid: Deidentifier, tmp_path: Path
) -> None:
    inputs = stored(health_system_url)
    assert {"AuditEvent", "Coverage", "Claim"} <= {r["resourceType"] for r in inputs}
    check(deid, inputs, export_cli(health_system_url, tmp_path / "out", key_file))


def test_cli_refuses_a_readable_key_or_no_key(
    synthea_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CMIO_DEID_KEY", raising=False)
    monkeypatch.delenv("CMIO_DEID_KEY_FILE", raising=False)
    loose = tmp_path / "loose.key"
    loose.write_bytes(KEY)
    loose.chmod(0o644)
    runner = CliRunner()
    args = ["export", "--database", synthea_url, "--out", str(tmp_path / "o"), "--deidentify"]
    done = runner.invoke(app, [*args, "--deid-key-file", str(loose)])
    assert done.exit_code == 2 and "0644" in done.output
    done = runner.invoke(app, args)
    assert done.exit_code == 2 and "CMIO_DEID_KEY" in done.output
    assert not (tmp_path / "o").exists()


@pytest.fixture()
def router(
    health_system_url: str, model: Model, tmp_path: Path, key_file: Path
) -> Iterator[FhirRouter]:
    from cmio.api.app import build_env

    settings = Settings(export_dir=str(tmp_path / "exports"), terminology_db=None, validation="off")
    env = build_env(health_system_url, settings, model=model)
    try:
        yield FhirRouter(env)
    finally:
        assert env.exports is not None
        env.exports.close()
        env.repository.close()


def bulk(router: FhirRouter, grant: AccessGrant | None = None, **params: str) -> list[bytes]:
    prefer = {"prefer": "respond-async"}
    context = RequestContext(grant=grant)
    query = list(params.items())
    kick = router.handle(FhirRequest("GET", "$export", query, prefer, context=context))
    assert kick.status == 202, kick.body
    status_path = dict(kick.headers)["content-location"].split("/fhir/", 1)[1]
    deadline = time.monotonic() + 30
    while (poll := router.handle(FhirRequest("GET", status_path, context=context))).status == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert poll.status == 200, poll.body
    lines: list[bytes] = []
    for item in orjson.loads(poll.body)["output"]:
        path = item["url"].split("/fhir/", 1)[1]
        got = router.handle(FhirRequest("GET", path, context=context))
        lines.extend(line + b"\n" for line in got.body.splitlines())
    return lines


def test_bulk_export_deidentified_on_request_and_for_analysts(
    router: FhirRouter,
    health_system_url: str,
    deid: Deidentifier,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CMIO_DEID_KEY", raising=False)
    monkeypatch.setenv("CMIO_DEID_KEY_FILE", str(key_file))
    inputs = stored(health_system_url)
    check(deid, inputs, bulk(router, _deidentify="true"))
    analyst = AccessGrant("ana", "user", frozenset({"user/*.rs"}), frozenset({"analyst"}))
    check(deid, inputs, bulk(router, analyst, _deidentify="false"))
    plain = b"".join(bulk(router))
    assert inputs[0]["id"].encode() in plain  # without the flag: the identified export
    bad = router.handle(
        FhirRequest("GET", "$export", [("_deidentify", "maybe")], {"prefer": "respond-async"})
    )
    assert bad.status == 400 and b"_deidentify" in bad.body
    monkeypatch.delenv("CMIO_DEID_KEY_FILE")
    off = router.handle(
        FhirRequest("GET", "$export", [("_deidentify", "true")], {"prefer": "respond-async"})
    )
    assert off.status == 501 and b"not configured" in off.body


VIEW = {
    "resourceType": "ViewDefinition",
    "name": "patients",
    "status": "active",
    "resource": "Patient",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "birth", "path": "birthDate"},
                {"name": "family", "path": "name.first().family"},
                {"name": "zip", "path": "address.first().postalCode"},
            ]
        }
    ],
}


def test_view_run_and_materialize_see_only_deidentified_resources(
    synthea_url: str, key_file: Path, deid: Deidentifier, tmp_path: Path
) -> None:
    view = tmp_path / "view.json"
    view.write_text(orjson.dumps(VIEW).decode())
    patients = {p["id"]: p for p in stored(synthea_url) if p["resourceType"] == "Patient"}
    runner = CliRunner()
    out = tmp_path / "rows.parquet"
    args = ["view", "run", str(view), "--source", "store", "--database", synthea_url]
    done = runner.invoke(
        app, [*args, "--out", str(out), "--deidentify", "--deid-key-file", str(key_file)]
    )
    assert done.exit_code == 0, done.output
    rows = pq.read_table(out).to_pylist()
    expected = {deid.pseudonym("Patient", pid): p for pid, p in patients.items()}
    assert {r["id"] for r in rows} == set(expected)
    for row in rows:
        source = expected[row["id"]]
        assert row["family"] is None and (row["zip"] is None or len(row["zip"]) == 3)
        if len(row["birth"]) == 10:
            days = deid.offset_days(source["id"])
            assert row["birth"] == shift(source["birthDate"], days)
        else:
            assert int(row["birth"]) <= time.gmtime().tm_year - 90
    analytics = tmp_path / "analytics.duckdb"
    mat = ["view-materialize", str(view), "--database", synthea_url, "--analytics", str(analytics)]
    done = runner.invoke(app, [*mat, "--deidentify", "--deid-key-file", str(key_file)])
    assert done.exit_code == 0, done.output
    with duckdb.connect(str(analytics), read_only=True) as con:
        got = con.execute("SELECT id, family FROM patients").fetchall()
    assert {r[0] for r in got} == set(expected) and all(r[1] is None for r in got)


def test_viewdefinition_run_deidentified_on_request_and_for_analysts(
    router: FhirRouter,
    health_system_url: str,
    deid: Deidentifier,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CMIO_DEID_KEY", raising=False)
    monkeypatch.setenv("CMIO_DEID_KEY_FILE", str(key_file))
    patients = {p["id"]: p for p in stored(health_system_url) if p["resourceType"] == "Patient"}
    body = orjson.dumps(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "viewResource", "resource": VIEW}],
        }
    )
    json_type = {"content-type": "application/fhir+json"}

    def rows(query: list[tuple[str, str]], grant: AccessGrant | None = None) -> list[Any]:
        answer = router.handle(
            FhirRequest(
                "POST",
                "$viewdefinition-run",
                query,
                json_type,
                body,
                context=RequestContext(grant=grant),
            )
        )
        assert answer.status == 200, answer.body
        return [orjson.loads(line) for line in answer.body.splitlines()]

    plain = rows([])
    assert {r["id"] for r in plain} == set(patients)
    analyst = AccessGrant("ana", "user", frozenset({"user/*.rs"}), frozenset({"analyst"}))
    for got in (rows([("_deidentify", "true")]), rows([], analyst)):
        expected = {deid.pseudonym("Patient", pid): p for pid, p in patients.items()}
        assert {r["id"] for r in got} == set(expected)
        for row in got:
            source = expected[row["id"]]
            assert row["family"] is None and (row["zip"] is None or len(row["zip"]) == 3)
            if len(row["birth"]) == 10:
                assert row["birth"] == shift(source["birthDate"], deid.offset_days(source["id"]))
    refused = router.handle(
        FhirRequest("POST", "$viewdefinition-run", [("_deidentify", "yes")], json_type, body)
    )
    assert refused.status == 400 and b"_deidentify" in refused.body
