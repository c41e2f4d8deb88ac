"""``$validate`` and validation on write (Settings.validation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.validation.validator import Validator

JSON = {"content-type": "application/fhir+json"}
NARRATIVE = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"}
BODYWEIGHT = "http://hl7.org/fhir/StructureDefinition/bodyweight"
WEIGHT: dict[str, Any] = {
    "resourceType": "Observation",
    "text": NARRATIVE,
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2020-01-01",
    "valueQuantity": {
        "value": 70,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    },
}


@pytest.fixture(scope="module")
def shared_validator(model: Model) -> Validator:
    return Validator(model)


def _router(
    tmp_path: Path, model: Model, validator: Validator, mode: str
) -> tuple[FhirRouter, Env]:
    env = build_env(f"sqlite:///{tmp_path / 'cmio.db'}", Settings(validation=mode), model)
    env.profile_validator = validator
    return FhirRouter(env), env


@pytest.fixture()
def router(tmp_path: Path, model: Model, shared_validator: Validator) -> Iterator[FhirRouter]:
    built, env = _router(tmp_path, model, shared_validator, "base")
    yield built
    env.repository.close()


def _post(
    router: FhirRouter, path: str, body: Any, query: list[tuple[str, str]] | None = None
) -> tuple[int, Any]:
    request = FhirRequest("POST", path, query or [], dict(JSON), orjson.dumps(body))
    response = router.handle(request)
    return response.status, json.loads(response.body)


def test_valid_resource_is_all_ok(router: FhirRouter) -> None:
    status, outcome = _post(router, "Observation/$validate", WEIGHT)
    assert status == 200
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "All OK"}],
    }


def test_issues_come_back_with_200(router: FhirRouter) -> None:
    status, outcome = _post(
        router, "Patient/$validate", {"resourceType": "Patient", "gender": "bloke"}
    )
    assert status == 200
    assert outcome["issue"] == [
        {
            "severity": "warning",
            "code": "invariant",
            "diagnostics": "Constraint failed: dom-6: A resource should have narrative for robust management",
            "expression": ["Patient"],
        },
        {
            "severity": "error",
            "code": "code-invalid",
            "diagnostics": "The value 'bloke' is not in the required value set "
            "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1",
            "expression": ["Patient.gender"],
        },
    ]


def test_profile_in_query_and_in_parameters(router: FhirRouter) -> None:
    wrong = {**WEIGHT, "valueQuantity": {**WEIGHT["valueQuantity"], "code": "kilogram"}}
    status, outcome = _post(router, "Observation/$validate", wrong, [("profile", BODYWEIGHT)])
    assert status == 200
    assert [(i["severity"], i["expression"]) for i in outcome["issue"]] == [
        ("error", ["Observation.valueQuantity.code"])
    ]
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": wrong},
            {"name": "profile", "valueCanonical": BODYWEIGHT},
        ],
    }
    assert _post(router, "Observation/$validate", parameters)[1] == outcome
    plain = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": wrong}]}
    assert _post(router, "Observation/$validate", plain)[1]["issue"][0]["severity"] == "information"


def test_bad_requests(router: FhirRouter) -> None:
    assert _post(router, "Patient/$validate", WEIGHT)[0] == 400
    assert _post(router, "Fish/$validate", WEIGHT)[0] == 404
    assert _post(router, "Observation/$validate", {"resourceType": "Parameters"})[0] == 400
    status, outcome = _post(
        router, "Observation/$validate", WEIGHT, [("profile", "http://x.org/p")]
    )
    assert status == 200
    assert outcome["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize(("mode", "status"), [("off", 201), ("base", 400), ("profiles", 400)])
def test_validation_on_write(
    tmp_path: Path, model: Model, shared_validator: Validator, mode: str, status: int
) -> None:
    router, env = _router(tmp_path, model, shared_validator, mode)
    try:
        created, outcome = _post(router, "Patient", {"resourceType": "Patient", "gender": "bloke"})
        assert created == status
        if status == 400:
            assert outcome["issue"][0]["expression"] == ["Patient.gender"]
        # A profile claimed in meta.profile is enforced in "profiles" mode only.
        claimed = {
            **WEIGHT,
            "meta": {"profile": [BODYWEIGHT]},
            "valueQuantity": {**WEIGHT["valueQuantity"], "code": "mg"},
        }
        expected = 400 if mode == "profiles" else 201
        assert _post(router, "Observation", claimed)[0] == expected
    finally:
        env.repository.close()


def test_over_http(client: httpx.Client) -> None:
    response = client.post("/Observation/$validate", json=WEIGHT, headers=JSON)
    assert response.status_code == 200
    assert response.json()["issue"][0]["diagnostics"] == "All OK"
