"""Profiles: a US-Core-like Patient profile built here, and the core vital-signs profiles."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.model import Model
from cmio.validation.packages import FhirPackage, load_package
from cmio.validation.validator import Validator

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BUNDLES = sorted((SHARED / "data" / "synthea-r4" / "bundles").glob("*.json"))
URL = "http://example.org/fhir/StructureDefinition/example-patient"
MRN = "http://hospital.example.org/mrn"
SSN = "http://hl7.org/fhir/sid/us-ssn"
BIRTHPLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
NARRATIVE = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "text": NARRATIVE,
    "extension": [{"url": BIRTHPLACE, "valueAddress": {"city": "Boston"}}],
    "identifier": [{"system": MRN, "value": "1"}, {"system": SSN, "value": "2"}],
    "active": True,
    "name": [{"family": "Doe"}],
    "gender": "female",
    "maritalStatus": {"coding": [{"system": MARITAL, "code": "M"}]},
    "generalPractitioner": [{"reference": "Practitioner/1"}],
}


def _element(eid: str, base_path: str, card: tuple[int, str], **extra: Any) -> dict[str, Any]:
    path = ".".join(part.partition(":")[0] for part in eid.split("."))
    return {
        "id": eid,
        "path": path,
        "min": card[0],
        "max": card[1],
        "base": {"path": base_path, "min": 0, "max": "*" if "." not in base_path[8:] else "1"},
        **extra,
    }


def _identifier_slice(name: str, system: str, card: tuple[int, str]) -> list[dict[str, Any]]:
    sliced = f"Patient.identifier:{name}"
    return [
        _element(sliced, "Patient.identifier", card, sliceName=name, type=[{"code": "Identifier"}]),
        _element(
            f"{sliced}.system",
            "Identifier.system",
            (1, "1"),
            type=[{"code": "uri"}],
            fixedUri=system,
        ),
    ]


def build_profile(
    validator: Validator, slicing: dict[str, Any] | None = None, url: str = URL
) -> dict[str, Any]:
    """A US-Core-like Patient profile: a snapshot derived from the core Patient."""
    base = validator.definitions.base_definition("Patient")
    assert base is not None
    profile = copy.deepcopy(base)
    profile.update(
        url=url, name="ExamplePatient", derivation="constraint", baseDefinition=base["url"]
    )
    elements: list[dict[str, Any]] = profile["snapshot"]["element"]
    edits: dict[str, dict[str, Any]] = {
        "Patient.identifier": {
            "min": 1,
            "slicing": slicing
            or {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
        },
        "Patient.name": {"min": 1},
        "Patient.active": {"fixedBoolean": True},
        "Patient.maritalStatus": {"patternCodeableConcept": {"coding": [{"system": MARITAL}]}},
        "Patient.deceased[x]": {"type": [{"code": "boolean"}]},
        "Patient.telecom": {"max": "0"},
        "Patient.generalPractitioner": {
            "type": [
                {
                    "code": "Reference",
                    "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"],
                }
            ]
        },
        "Patient.extension": {
            "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}
        },
    }
    for element in elements:
        element.update(edits.get(element["id"], {}))
    additions = {
        "Patient.extension": [
            _element(
                "Patient.extension:birthPlace",
                "Patient.extension",
                (1, "1"),
                sliceName="birthPlace",
                type=[{"code": "Extension", "profile": [BIRTHPLACE]}],
            )
        ],
        "Patient.identifier": [
            *_identifier_slice("mrn", MRN, (1, "1")),
            *_identifier_slice("ssn", SSN, (0, "1")),
        ],
    }
    for after, new in additions.items():
        index = next(i for i, e in enumerate(elements) if e["id"] == after)
        elements[index + 1 : index + 1] = new
    return profile


@pytest.fixture(scope="module")
def validator(model: Model) -> Validator:
    return Validator(model)


@pytest.fixture(scope="module")
def profiled(model: Model, validator: Validator) -> Validator:
    package = FhirPackage("example", "1.0.0", (build_profile(validator),))
    return Validator(model, [package], core=validator.core)


def _found(validator: Validator, patient: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (i.severity, i.code, i.expression, i.message) for i in validator.validate(patient, [URL])
    ]


def test_conforming_patient(profiled: Validator) -> None:
    assert profiled.validate(PATIENT, [URL]) == []


def test_slice_cardinality(profiled: Validator) -> None:
    patient = copy.deepcopy(PATIENT)
    patient["identifier"] = [{"system": SSN, "value": "2"}, {"system": SSN, "value": "3"}]
    assert _found(profiled, patient) == [
        (
            "error",
            "required",
            "Patient.identifier",
            "Slice 'mrn' of Patient.identifier: minimum required = 1, but only found 0",
        ),
        (
            "error",
            "structure",
            "Patient.identifier",
            "Slice 'ssn' of Patient.identifier: maximum allowed = 1, but found 2",
        ),
    ]


def test_min_max_fixed_pattern_type_target(profiled: Validator) -> None:
    patient = copy.deepcopy(PATIENT)
    del patient["name"]
    patient.update(
        active=False,
        telecom=[{"system": "phone", "value": "1"}],
        deceasedDateTime="2020-01-01",
        maritalStatus={"coding": [{"system": "http://example.org", "code": "M"}]},
        generalPractitioner=[{"reference": "Organization/1"}],
    )
    assert sorted(f for f in _found(profiled, patient) if f[0] == "error") == sorted(
        [
            (
                "error",
                "value",
                "Patient.active",
                "Patient.active: value must be exactly True, found False",
            ),
            (
                "error",
                "value",
                "Patient.maritalStatus",
                "Patient.maritalStatus: value must match the pattern {'coding': [{'system': "
                "'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus'}]}, found {'coding': "
                "[{'system': 'http://example.org', 'code': 'M'}]}",
            ),
            (
                "error",
                "structure",
                "Patient.generalPractitioner[0].reference",
                "Patient.generalPractitioner: the reference points to a Organization, expected Practitioner",
            ),
            (
                "error",
                "required",
                "Patient.name",
                "Patient.name: minimum required = 1, but only found 0",
            ),
            (
                "error",
                "structure",
                "Patient.telecom",
                "Patient.telecom: maximum allowed = 0, but found 1",
            ),
            (
                "error",
                "structure",
                "Patient.deceasedDateTime",
                "Patient.deceased[x]: type dateTime is not allowed here (allowed: boolean)",
            ),
        ]
    )


def test_extension_slice_and_extension_definition(profiled: Validator) -> None:
    patient = copy.deepcopy(PATIENT)
    patient["extension"] = [{"url": BIRTHPLACE, "valueString": "Boston"}]
    found = _found(profiled, patient)
    # The birthPlace extension takes an Address (its definition, from the core package).
    assert found == [
        (
            "error",
            "structure",
            "Patient.extension[0].valueString",
            "Extension.value[x]: type string is not allowed here (allowed: Address)",
        )
    ]
    patient["extension"] = []
    del patient["extension"]
    assert [m for *_, m in _found(profiled, patient)] == [
        "Slice 'birthPlace' of Patient.extension: minimum required = 1, but only found 0"
    ]


def test_closed_ordered_and_open_at_end_slicing(model: Model, validator: Validator) -> None:
    variants = {
        "closed": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"},
        "ordered": {
            "discriminator": [{"type": "value", "path": "system"}],
            "rules": "open",
            "ordered": True,
        },
        "openAtEnd": {"discriminator": [{"type": "value", "path": "system"}], "rules": "openAtEnd"},
    }
    profiles = tuple(
        build_profile(validator, slicing, f"{URL}-{name}") for name, slicing in variants.items()
    )
    local = Validator(model, [FhirPackage("example", "1.0.0", profiles)], core=validator.core)
    other = {"system": "http://example.org/other", "value": "9"}
    patient = copy.deepcopy(PATIENT)
    patient["identifier"] = [other, *PATIENT["identifier"]]
    closed = local.validate(patient, [f"{URL}-closed"])
    assert [(i.expression, i.message[:47]) for i in closed] == [
        ("Patient.identifier[0]", "This element does not match any known slice of ")
    ]
    at_end = local.validate(patient, [f"{URL}-openAtEnd"])
    assert [(i.expression, i.message) for i in at_end] == [
        ("Patient.identifier[1]", "Slice 'mrn' follows values that match no slice (openAtEnd)"),
        ("Patient.identifier[2]", "Slice 'ssn' follows values that match no slice (openAtEnd)"),
    ]
    patient["identifier"] = [*PATIENT["identifier"], other]
    assert local.validate(patient, [f"{URL}-openAtEnd"]) == []
    patient["identifier"] = list(reversed(PATIENT["identifier"]))
    ordered = local.validate(patient, [f"{URL}-ordered"])
    assert [(i.expression, i.message) for i in ordered] == [
        (
            "Patient.identifier[1]",
            "Slice 'mrn' is out of order (the slicing of Patient.identifier is ordered)",
        )
    ]


def test_profile_from_a_user_package_and_meta_profile(
    model: Model, validator: Validator, tmp_path: Path
) -> None:
    path = tmp_path / "example.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {
            "package/package.json": {"name": "example.fhir", "version": "0.1.0"},
            "package/StructureDefinition-example-patient.json": build_profile(validator),
            "package/example/Patient-x.json": {"resourceType": "Patient"},
        }.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    package = load_package(path)
    assert (package.name, package.version, len(package.resources)) == ("example.fhir", "0.1.0", 1)
    local = Validator(model, [path], core=validator.core)
    patient = copy.deepcopy(PATIENT)
    patient["meta"] = {"profile": [URL + "|0.1.0"]}
    assert local.validate(patient) == []
    patient["active"] = False
    assert [i.expression for i in local.validate(patient)] == ["Patient.active"]
    # Without the package the claimed profile is unknown: a warning, not an error.
    assert [(i.severity, i.code) for i in validator.validate(patient)] == [
        ("warning", "not-supported")
    ]


def test_unknown_or_mismatched_explicit_profile(validator: Validator) -> None:
    unknown = validator.validate(PATIENT, ["http://example.org/none"])
    assert [(i.severity, i.code) for i in unknown] == [("error", "not-found")]
    wrong = validator.validate(PATIENT, ["http://hl7.org/fhir/StructureDefinition/bodyweight"])
    assert [(i.severity, i.code, i.message) for i in wrong] == [
        (
            "error",
            "invalid",
            "Profile http://hl7.org/fhir/StructureDefinition/bodyweight constrains Observation, not Patient",
        )
    ]


VITALS = {"29463-7": "bodyweight", "8302-2": "bodyheight", "39156-5": "bmi"}


def _vital_signs() -> list[dict[str, Any]]:
    found = []
    for path in BUNDLES[:15]:
        for entry in orjson.loads(path.read_bytes())["entry"]:
            resource = entry["resource"]
            is_observation = resource["resourceType"] == "Observation"
            if is_observation and resource["code"]["coding"][0]["code"] in VITALS:
                found.append(resource)
    return found


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not available")
def test_synthea_vital_signs_conform_to_the_core_profiles(validator: Validator) -> None:
    observations = _vital_signs()
    assert len(observations) > 100
    for observation in observations:
        url = (
            "http://hl7.org/fhir/StructureDefinition/"
            + VITALS[observation["code"]["coding"][0]["code"]]
        )
        errors = [i for i in validator.validate(observation, [url]) if i.severity == "error"]
        assert errors == [], observation["id"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not available")
def test_vital_signs_mutations(validator: Validator) -> None:
    weight = next(o for o in _vital_signs() if o["code"]["coding"][0]["code"] == "29463-7")
    url = "http://hl7.org/fhir/StructureDefinition/bodyweight"

    def errors(observation: dict[str, Any]) -> list[tuple[str, str, str]]:
        found = validator.validate(observation, [url])
        return [(i.code, i.expression, i.message) for i in found if i.severity == "error"]

    wrong_code = copy.deepcopy(weight)
    wrong_code["code"]["coding"][0]["code"] = "3141-9"
    assert errors(wrong_code) == [
        (
            "required",
            "Observation.code.coding",
            "Slice 'BodyWeightCode' of Observation.code.coding: minimum required = 1, but only found 0",
        )
    ]
    wrong_category = copy.deepcopy(weight)
    wrong_category["category"][0]["coding"][0]["code"] = "laboratory"
    assert [m[:30] for _, _, m in errors(wrong_category)] == ["Slice 'VSCat' of Observation.c"]
    wrong_unit = copy.deepcopy(weight)
    wrong_unit["valueQuantity"]["code"] = "kilogram"
    assert errors(wrong_unit) == [
        (
            "code-invalid",
            "Observation.valueQuantity.code",
            "The value 'kilogram' is not in the required value set "
            "http://hl7.org/fhir/ValueSet/ucum-bodyweight|4.0.1",
        )
    ]
    text_value = copy.deepcopy(weight)
    del text_value["valueQuantity"]
    text_value["valueString"] = "heavy"
    assert [c for c, _, _ in errors(text_value)] == ["structure", "structure"]
    vague = copy.deepcopy(weight)
    vague["effectiveDateTime"] = "2019"
    assert [m[:24] for _, _, m in errors(vague)] == ["Constraint failed: vs-1:"]
