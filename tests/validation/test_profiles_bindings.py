"""Bindings and value set expansion from the core package; a pluggable terminology provider."""

from __future__ import annotations

from typing import Any

import pytest

from cmio.model import Model
from cmio.validation.terminology import PackageTerminology
from cmio.validation.validator import Validator

NARRATIVE = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"}
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


@pytest.fixture(scope="module")
def validator(model: Model) -> Validator:
    return Validator(model)


@pytest.fixture(scope="module")
def terminology(validator: Validator) -> PackageTerminology:
    return PackageTerminology(validator.definitions)


def _issues(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    found = validator.validate({**resource, "text": NARRATIVE})
    return [(i.severity, i.code, i.expression, i.message) for i in found]


def test_required_binding_on_a_code(validator: Validator) -> None:
    assert _issues(validator, {"resourceType": "Patient", "gender": "bloke"}) == [
        (
            "error",
            "code-invalid",
            "Patient.gender",
            "The value 'bloke' is not in the required value set "
            "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1",
        )
    ]


def test_required_binding_on_a_codeable_concept(validator: Validator) -> None:
    allergy: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/1"},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
    }
    assert _issues(validator, allergy) == []
    allergy["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "gone"}]}
    assert _issues(validator, allergy) == [
        (
            "error",
            "code-invalid",
            "AllergyIntolerance.clinicalStatus",
            f"The value {CLINICAL}#gone is not in the required value set "
            "http://hl7.org/fhir/ValueSet/allergyintolerance-clinical|4.0.1",
        )
    ]
    # One coding from the value set is enough; text alone is not judged.
    allergy["clinicalStatus"] = {
        "coding": [
            {"system": "http://example.org", "code": "x"},
            {"system": CLINICAL, "code": "active"},
        ]
    }
    assert _issues(validator, allergy) == []
    allergy["clinicalStatus"] = {"text": "active"}
    assert _issues(validator, allergy) == []


def test_extensible_binding_is_a_warning(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {"coding": [{"system": "http://example.org/types", "code": "X"}]},
                "value": "1",
            }
        ],
    }
    assert [(s, c, e) for s, c, e, _ in _issues(validator, patient)] == [
        ("warning", "code-invalid", "Patient.identifier[0].type")
    ]


def test_bindings_inside_datatypes_and_contained(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "pigeon", "value": "x"}],
        "contained": [{"resourceType": "Patient", "id": "c", "gender": "bloke"}],
        "link": [{"other": {"reference": "#c"}, "type": "seealso"}],
    }
    assert [(c, e) for _, c, e, _ in _issues(validator, patient)] == [
        ("code-invalid", "Patient.telecom[0].system"),
        ("code-invalid", "Patient.contained[0].gender"),
    ]


def test_expansions(terminology: PackageTerminology) -> None:
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert terminology.validate_code(gender, None, "female") is True
    assert terminology.validate_code(gender + "|4.0.1", None, "bloke") is False
    assert terminology.validate_code(gender, "http://hl7.org/fhir/administrative-gender", "male")
    assert terminology.validate_code(gender, "http://example.org", "male") is False
    # An is-a filter over a v3 code system in the package.
    encounter = "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"
    act = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert terminology.validate_code(encounter, act, "AMB") is True
    assert terminology.validate_code(encounter, act, "IMP") is True
    assert terminology.validate_code(encounter, act, "ACTCOUNSEL") is False
    # Needs SNOMED CT: unknown, not an error.
    assert (
        terminology.validate_code(
            "http://hl7.org/fhir/ValueSet/condition-code", "http://snomed.info/sct", "1"
        )
        is None
    )
    # A concept list over an external system (UCUM) is enumerable.
    units = "http://hl7.org/fhir/ValueSet/units-of-time"
    assert terminology.validate_code(units, "http://unitsofmeasure.org", "min") is True
    assert terminology.validate_code(units, "http://unitsofmeasure.org", "kg") is False
    assert terminology.validate_code("http://example.org/unknown", None, "x") is None


class _Everything:
    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str | None, str]] = []

    def validate_code(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        self.asked.append((valueset_url, system, code))
        return self.answer


def test_a_terminology_provider_is_asked_first(model: Model, validator: Validator) -> None:
    patient = {"resourceType": "Patient", "gender": "bloke", "text": NARRATIVE}
    yes = _Everything(True)
    assert Validator(model, terminology=yes, core=validator.core).validate(patient) == []
    asked = ("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1", None, "bloke")
    assert asked in yes.asked
    unsure = _Everything(None)  # falls back to the package value sets
    found = Validator(model, terminology=unsure, core=validator.core).validate(patient)
    assert [i.code for i in found] == ["code-invalid"]
