"""Rules on write (error rejects, warning annotates) and in batch agree, on both backends."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from cmio.api.app import CmioApp
from cmio.fhirpath import FhirPathEngine
from cmio.rules import (
    FINDING_TAG,
    RuleEngine,
    active_rules,
    install_starter_rules,
    rule_as_library,
    rule_from_json,
    run_rules,
)

LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}

FIXTURES: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "mrn", "identifier": [{"type": MR, "value": "123"}]},
    {"resourceType": "Patient", "id": "no-mrn", "identifier": [{"value": "123"}]},
    {
        "resourceType": "Observation",
        "id": "lab-loinc",
        "status": "final",
        "category": [{"coding": [LAB]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/mrn"},
        "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    },
    {
        "resourceType": "Observation",
        "id": "lab-local",
        "status": "final",
        "category": [{"coding": [LAB]}],
        "code": {"coding": [{"system": "urn:local:lab", "code": "A1C"}]},
        "subject": {"reference": "Patient/mrn"},
        "valueQuantity": {"value": 7.1, "unit": "percent"},
    },
    {
        "resourceType": "Observation",
        "id": "vital-local",  # not a lab: LOINC rule out of scope; no subject: error rule
        "status": "final",
        "code": {"coding": [{"system": "urn:local", "code": "x"}]},
        "valueString": "ok",
    },
    {"resourceType": "Condition", "id": "snomed", "subject": {"reference": "Patient/mrn"},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}},
    {"resourceType": "Condition", "id": "local", "subject": {"reference": "Patient/mrn"},
     "code": {"coding": [{"system": "urn:local:dx", "code": "DM"}]}},
    {"resourceType": "Encounter", "id": "no-start", "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
    {"resourceType": "MedicationRequest", "id": "ndc", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/mrn"},
     "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "1"}]}},
]  # fmt: skip

SUBJECT_RULE = rule_from_json(
    {
        "id": "observation-subject",
        "severity": "error",
        "message": "An observation must name its subject",
        "scope": {"resourceTypes": ["Observation"]},
        "path": "subject",
        "expression": "subject.exists()",
    }
)


def _client(app: CmioApp) -> httpx.Client:
    base = app.server.base  # type: ignore[attr-defined]
    return httpx.Client(base_url=base, timeout=30, headers={"accept": "application/fhir+json"})


def _put(http: httpx.Client, resource: dict[str, Any]) -> httpx.Response:
    return http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)


def _findings_of(response: httpx.Response) -> set[tuple[str, str]]:
    body = response.json()
    if response.status_code >= 400:
        return {
            (issue["diagnostics"].split()[1], "error")
            for issue in body["issue"]
            if issue["code"] == "business-rule"
        }
    return {
        (tag["code"], tag["display"].split(":")[0])
        for tag in body.get("meta", {}).get("tag", [])
        if tag["system"] == FINDING_TAG
    }


@pytest.fixture(scope="module")
def loaded(app: CmioApp) -> CmioApp:
    """Fixtures stored directly (ids ``d-*``, before any rule), then the rules installed."""
    repository = app.env.repository
    with repository.transaction() as tx:
        for fixture in FIXTURES:
            tx.create(copy.deepcopy(fixture), id=f"d-{fixture['id']}")
    install_starter_rules(repository)
    with _client(app) as http:
        response = http.put(f"/Library/{rule_as_library(SUBJECT_RULE)['id']}",
                            json=rule_as_library(SUBJECT_RULE))  # fmt: skip
        assert response.status_code == 201, response.text
    return app


def test_write_time_and_batch_agree(loaded: CmioApp) -> None:
    written: dict[str, set[tuple[str, str]]] = {}
    with _client(loaded) as http:
        for fixture in FIXTURES:
            resource = {**copy.deepcopy(fixture), "id": f"w-{fixture['id']}"}
            response = _put(http, resource)
            assert response.status_code in (201, 400), response.text
            written[fixture["id"]] = _findings_of(response)
    repository = loaded.env.repository
    engine = RuleEngine(FhirPathEngine(loaded.env.model))
    table = run_rules(repository, engine, active_rules(repository))
    batch: dict[str, set[tuple[str, str]]] = {f["id"]: set() for f in FIXTURES}
    stored_w: dict[str, set[tuple[str, str]]] = {f["id"]: set() for f in FIXTURES}
    for row in table.to_pylist():
        rid = row["resource"].split("/")[1]
        target = batch if rid.startswith("d-") else stored_w
        target[rid[2:]].add((row["rule"], row["severity"]))
    assert batch == written
    # stored (warning-only) resources: their batch findings are the tags they carry
    for fid, found in written.items():
        if all(sev != "error" for _, sev in found):
            assert stored_w[fid] == found
    assert written["no-mrn"] == {("patient-mrn", "warning")}
    assert written["lab-local"] == {("lab-loinc", "warning"), ("quantity-ucum", "warning")}
    assert written["vital-local"] == {("observation-subject", "error")}
    assert written["local"] == {("problem-snomed-icd10cm", "warning")}
    assert written["ndc"] == {("medication-request-rxnorm", "warning")}
    assert written["no-start"] == {("encounter-start", "warning")}
    assert written["mrn"] == written["lab-loinc"] == written["snomed"] == set()


def test_error_names_rule_and_path_and_writes_nothing(loaded: CmioApp) -> None:
    good = {**copy.deepcopy(FIXTURES[0]), "id": "tx-good"}
    bad = {**copy.deepcopy(FIXTURES[4]), "id": "tx-bad"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in (good, bad)
        ],
    }
    with _client(loaded) as http:
        response = http.post("", json=bundle)
        assert response.status_code == 400
        issue = response.json()["issue"][0]
        assert "observation-subject" in issue["diagnostics"]
        assert issue["expression"] == ["Bundle.entry[1].resource.Observation.subject"]
        assert http.get("/Patient/tx-good").status_code == 404
        assert http.get("/Observation/tx-bad").status_code == 404


def test_update_clears_fixed_warning(loaded: CmioApp) -> None:
    with _client(loaded) as http:
        prefer = {"prefer": "return=OperationOutcome"}
        outcome = http.put(
            "/Patient/oo", json={"resourceType": "Patient", "id": "oo"}, headers=prefer
        )
        assert outcome.status_code == 201
        warnings = [i for i in outcome.json()["issue"] if i["severity"] == "warning"]
        assert [w["diagnostics"].split(":")[0] for w in warnings] == ["Rule patient-mrn"]
        patient = {"resourceType": "Patient", "id": "fixme"}
        assert _findings_of(_put(http, patient)) == {("patient-mrn", "warning")}
        stored = http.get("/Patient/fixme").json()
        stored["identifier"] = [{"type": MR, "value": "9"}]
        response = _put(http, stored)
        assert response.status_code == 200
        assert _findings_of(response) == set()


def test_retired_and_new_versions(loaded: CmioApp) -> None:
    repository = loaded.env.repository
    with _client(loaded) as http:
        draft = rule_as_library(
            rule_from_json(
                {"id": "need-note", "severity": "error", "message": "A note is required",
                 "scope": {"resourceTypes": ["Condition"]}, "expression": "note.exists()"},
                status="draft",
            )
        )  # fmt: skip
        assert http.put(f"/Library/{draft['id']}", json=draft).status_code == 201
        condition = {**copy.deepcopy(FIXTURES[5]), "id": "c-draft"}
        assert _put(http, condition).status_code == 201  # a draft rule does not fire
        active = {**draft, "id": "need-note-2-0-0", "version": "2.0.0", "status": "active"}
        assert http.put("/Library/need-note-2-0-0", json=active).status_code == 201
        condition["id"] = "c-active"
        response = _put(http, condition)
        assert response.status_code == 400
        assert "need-note (2.0.0)" in response.text
        retired = {**active, "status": "retired"}
        assert http.put("/Library/need-note-2-0-0", json=retired).status_code == 200
        assert _put(http, condition).status_code == 201
    assert "need-note" not in {r.id for r in active_rules(repository)}


def test_invalid_rule_library_refused(loaded: CmioApp) -> None:
    bad = rule_as_library(
        rule_from_json({"id": "broken", "severity": "error", "message": "m", "expression": "(("})
    )
    with _client(loaded) as http:
        response = http.put(f"/Library/{bad['id']}", json=bad)
        assert response.status_code == 400
        assert "Invalid rule" in response.text
        nonsense = {**bad, "id": "broken-2"}
        nonsense["content"] = [
            {"contentType": "application/vnd.cmio.rule+json", "data": "bm90IGpzb24="}
        ]
        assert http.put("/Library/broken-2", json=nonsense).status_code == 400
    assert json.loads(json.dumps(bad))["status"] == "active"
