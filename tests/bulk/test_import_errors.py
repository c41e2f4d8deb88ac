"""Rejected resources are reported (with expressions) and not stored; the rest is."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.bulk.importer import import_paths
from cmio.model import Model
from cmio.store import open_repository
from cmio.store.base import NotFoundError, Repository

NPI = "http://hl7.org/fhir/sid/us-npi"


def ndjson(path: Path, rows: list[Any]) -> Path:
    lines = [r if isinstance(r, bytes) else orjson.dumps(r) for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def practitioner(pid: str, npi: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": NPI, "value": npi}],
    }


def encounter(eid: str, who: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/ok-1"},
        "participant": [{"individual": {"reference": who}}],
    }


@pytest.fixture()
def repo(empty_url: str) -> Iterator[Repository]:
    repository = open_repository(empty_url)
    yield repository
    repository.close()


@pytest.fixture()
def broken_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    ndjson(
        folder / "Practitioner.ndjson",
        [practitioner("pr-1", "111"), practitioner("pr-2", "222"), practitioner("pr-3", "222")],
    )
    ndjson(
        folder / "Patient.ndjson",
        [
            {"resourceType": "Patient", "id": "ok-1", "birthDate": "1970-01-01"},
            b'{"resourceType": "Patient", "id": "broken-json", ',
            {"resourceType": "Patient", "id": "bad-date", "birthDate": "1970-13-45"},
            {"resourceType": "Patient", "id": "ok-2", "gender": "female"},
            {"resourceType": "Spaceship", "id": "x"},
            {"resourceType": "Patient", "id": "bad id!"},
            b"",
            {"resourceType": "Patient", "id": "unknown-el", "foo": 1},
            [1, 2],
        ],
    )
    ndjson(
        folder / "Encounter.ndjson",
        [
            encounter("enc-ok", f"Practitioner?identifier={NPI}|111"),
            encounter("enc-missing", f"Practitioner?identifier={NPI}|999"),
            encounter("enc-ambiguous", f"Practitioner?identifier={NPI}|222"),
        ],
    )
    return folder


def test_valid_resources_stored_broken_ones_reported(
    repo: Repository, model: Model, broken_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.ndjson"
    summary = import_paths(repo, [broken_dir], model=model, report_path=report)
    assert repo.read("Patient", "ok-1").version == 1
    assert repo.read("Patient", "ok-2").version == 1
    enc = orjson.loads(repo.read("Encounter", "enc-ok").data or b"")
    assert enc["participant"][0]["individual"]["reference"] == "Practitioner/pr-1"
    for rtype, rid in [
        ("Patient", "bad-date"),
        ("Patient", "unknown-el"),
        ("Encounter", "enc-missing"),
        ("Encounter", "enc-ambiguous"),
    ]:
        with pytest.raises(NotFoundError):
            repo.read(rtype, rid)
    rows = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert summary.rejected == len(rows) == 8
    assert summary.report_path == str(report)
    by_line = {(Path(r["file"]).name, r["line"]): r for r in rows}
    assert by_line[("Patient.ndjson", 2)]["issues"][0]["code"] == "structure"
    bad_date = by_line[("Patient.ndjson", 3)]
    assert bad_date["id"] == "bad-date"
    assert bad_date["issues"][0]["expression"] == "Patient.birthDate"
    assert by_line[("Patient.ndjson", 5)]["issues"][0]["expression"] == "resourceType"
    assert by_line[("Patient.ndjson", 6)]["issues"][0]["expression"] == "Patient.id"
    assert by_line[("Patient.ndjson", 8)]["issues"][0]["expression"] == "Patient.foo"
    assert by_line[("Patient.ndjson", 9)]["resourceType"] is None
    missing = by_line[("Encounter.ndjson", 2)]["issues"][0]
    assert missing["code"] == "not-found"
    assert missing["expression"] == "Encounter.participant[0].individual.reference"
    assert by_line[("Encounter.ndjson", 3)]["issues"][0]["code"] == "multiple-matches"
    assert summary.by_type["Patient"].rejected == 3
    assert summary.by_type["(unknown)"].rejected == 2
    assert summary.by_type["Patient"].created == 2


def test_csv_report(repo: Repository, model: Model, broken_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    import_paths(repo, [broken_dir / "Patient.ndjson"], model=model, report_path=report)
    with report.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["expression"] for r in rows} >= {"Patient.birthDate", "Patient.foo"}
    assert {r["line"] for r in rows} == {"2", "3", "5", "6", "8", "9"}


def test_bundle_entries(repo: Repository, model: Model, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a001",
                "resource": {"resourceType": "Patient", "birthDate": "1980-02-03"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a002",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "urn:uuid:6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a001"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a003",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "y"},
                    "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {"resourceType": "Patient", "id": "put-1"},
                "request": {"method": "PUT", "url": "Patient/put-1"},
            },
            {"request": {"method": "DELETE", "url": "Patient/gone"}},
        ],
    }
    path = tmp_path / "b.json"
    path.write_bytes(orjson.dumps(bundle))
    summary = import_paths(repo, [path], model=model, report_path=tmp_path / "r.ndjson")
    obs = orjson.loads(repo.read("Observation", "6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a002").data or b"")
    assert obs["subject"]["reference"] == "Patient/6a0c1c3e-1d1b-4d55-9a57-1f0e6cf0a001"
    assert repo.read("Patient", "put-1").version == 1
    rows = [orjson.loads(line) for line in (tmp_path / "r.ndjson").read_bytes().splitlines()]
    rows.sort(key=lambda r: r["entry"])
    assert [(r["entry"], r["issues"][0]["code"]) for r in rows] == [
        (2, "not-found"),
        (4, "not-supported"),
    ]
    assert rows[0]["issues"][0]["expression"] == "Observation.subject.reference"
    assert rows[1]["issues"][0]["expression"] == "Bundle.entry[4].request.method"
    assert summary.rejected == 2


def test_conditional_put_and_byte_order_mark(
    repo: Repository, model: Model, tmp_path: Path
) -> None:
    first = tmp_path / "Practitioner.ndjson"
    first.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(practitioner("pr-9", "999")) + b"\n")
    import_paths(repo, [first], model=model)
    changed = practitioner("ignored", "999") | {"active": True}
    del changed["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": changed,
                "request": {"method": "PUT", "url": f"Practitioner?identifier={NPI}|999"},
            }
        ],
    }
    path = tmp_path / "put.json"
    path.write_bytes(orjson.dumps(bundle))
    summary = import_paths(repo, [path], model=model)
    assert summary.by_type["Practitioner"].updated == 1
    stored = repo.read("Practitioner", "pr-9")
    assert stored.version == 2
    assert orjson.loads(stored.data or b"")["active"] is True


def test_gzip_and_missing_ids_are_idempotent(
    repo: Repository, model: Model, tmp_path: Path
) -> None:
    rows = [{"resourceType": "Patient", "name": [{"family": f"F{i}"}]} for i in range(5)]
    raw = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    path = tmp_path / "Patient.ndjson.gz"
    path.write_bytes(gzip.compress(raw))
    first = import_paths(repo, [path], model=model)
    second = import_paths(repo, [path], model=model)
    assert first.by_type["Patient"].created == 5
    assert second.by_type["Patient"].unchanged == 5
    assert len(list(repo.iter_current(["Patient"]))) == 5


def test_workers_give_the_same_result(
    empty_url: str, model: Model, synthea: Path, broken_dir: Path, tmp_path: Path
) -> None:
    inputs = [synthea / "bulk-ndjson-10-patients-partial", broken_dir]
    summary = import_paths(
        empty_url, inputs, model=model, workers=2, batch_size=500, report_path=tmp_path / "r.ndjson"
    )
    assert summary.totals().created == 7160 + 3 + 2 + 1
    assert summary.rejected == 8
    again = import_paths(empty_url, inputs, model=model, workers=1)
    assert again.totals().created == again.totals().updated == 0
