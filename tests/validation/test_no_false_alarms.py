"""No false alarms: real resources validate with zero errors, invariants and bindings included.

Corpus: every Synthea resource (bundles and bulk NDJSON), the FHIRPath suite's
JSON inputs, and the conformance resources of the core package itself. Where
the data is really invalid the exact issues are asserted instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.model import Model
from cmio.model.package import find_package_tarball, iter_package_resources
from cmio.validation import Issue
from cmio.validation.validator import Validator

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTHEA = SHARED / "data" / "synthea-r4"
BUNDLES = sorted((SYNTHEA / "bundles").glob("*.json"))
NDJSON = sorted(
    p for p in (SYNTHEA / "bulk-ndjson-10-patients-partial").glob("*.ndjson") if p.stem != "log"
)
FHIRPATH_INPUTS = SHARED / "conformance" / "fhirpath-r4" / "input-json"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not available")


@pytest.fixture(scope="module")
def validator(model: Model) -> Validator:
    return Validator(model)


def _errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def _load(name: str) -> Any:
    return json.loads((FHIRPATH_INPUTS / name).read_text())


@needs_shared
def test_every_synthea_bundle_entry_is_error_free(validator: Validator) -> None:
    count = 0
    for path in BUNDLES:
        for i, entry in enumerate(orjson.loads(path.read_bytes())["entry"]):
            count += 1
            resource = entry["resource"]
            assert _errors(validator.validate(resource)) == [], (path.name, i)
    assert count == 12_497


@needs_shared
def test_every_synthea_ndjson_line_is_error_free(validator: Validator) -> None:
    count = 0
    for path in NDJSON:
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                count += 1
                assert _errors(validator.validate(orjson.loads(line))) == [], (path.name, number)
    assert count == 7_160


@needs_shared
def test_whole_synthea_bundles_are_error_free(validator: Validator) -> None:
    # Bundle invariants (bdl-*) and every entry resource, in one call.
    for path in [*BUNDLES[:2], *sorted((SYNTHEA / "support").glob("*.json"))]:
        issues = validator.validate(orjson.loads(path.read_bytes()))
        assert _errors(issues) == [], path.name


@needs_shared
def test_synthea_warnings_are_the_expected_ones(validator: Validator) -> None:
    # Only dom-6 (no narrative) and one extensible binding: v2-0203 "SS" is not
    # in the identifier-type value set; the bulk data claims US Core profiles,
    # which are not loaded.
    messages: set[str] = set()
    bundle = orjson.loads(BUNDLES[0].read_bytes())
    for entry in bundle["entry"]:
        messages |= {i.message[:40] for i in validator.validate(entry["resource"])}
    assert messages == {
        "Constraint failed: dom-6: A resource sho",
        "None of the codes (http://terminology.hl",
    }
    line = (SYNTHEA / "bulk-ndjson-10-patients-partial" / "Patient.000.ndjson").read_bytes()
    issues = validator.validate(orjson.loads(line.splitlines()[0]))
    assert [(i.severity, i.code, i.expression) for i in issues if "meta.profile" in i.message] == [
        ("warning", "not-supported", "Patient.meta.profile")
    ]


VALID_FHIRPATH_INPUTS = [
    "appointment-examplereq.json",
    "observation-example.json",
    "parameters-example-types.json",
    "patient-example-period.json",
    "patient-example.json",
    "questionnaire-example.json",
    "valueset-example-expansion.json",
]


@needs_shared
def test_fhirpath_inputs_are_all_covered() -> None:
    names = {p.name for p in FHIRPATH_INPUTS.glob("*.json")}
    assert names == set(VALID_FHIRPATH_INPUTS) | {
        "codesystem-example.json",
        "explanationofbenefit-example.json",
        "patient-container-example.json",
        "patient-name-extensions.json",
    }


@needs_shared
@pytest.mark.parametrize("name", VALID_FHIRPATH_INPUTS)
def test_valid_fhirpath_inputs_have_no_errors(validator: Validator, name: str) -> None:
    assert _errors(validator.validate(_load(name))) == []


@needs_shared
def test_codesystem_example_has_a_duplicate_code(validator: Validator) -> None:
    # The suite's copy lists "chol-mass" twice (for its own tests): csd-1 fails.
    issues = _errors(validator.validate(_load("codesystem-example.json")))
    assert [(i.code, i.expression, i.message) for i in issues] == [
        (
            "invariant",
            "CodeSystem",
            "Constraint failed: csd-1: Within a code system definition, all the codes SHALL be unique",
        )
    ]


@needs_shared
def test_explanationofbenefit_fragment(validator: Validator) -> None:
    issues = _errors(validator.validate(_load("explanationofbenefit-example.json")))
    assert {i.code for i in issues} == {"required"}
    assert len(issues) == 11


@needs_shared
def test_patient_container_example(validator: Validator) -> None:
    # "reference": "1" lacks the "#": the reference is malformed, so the contained
    # Organization is referenced from nowhere (dom-3); it also has neither name
    # nor identifier (org-1).
    issues = _errors(validator.validate(_load("patient-container-example.json")))
    assert [(i.code, i.expression, i.message[:25]) for i in issues] == [
        ("value", "Patient.managingOrganization.reference", "invalid reference '1': ex"),
        ("invariant", "Patient", "Constraint failed: dom-3:"),
        ("invariant", "Patient.contained[0]", "Constraint failed: org-1:"),
    ]


@needs_shared
def test_patient_name_extensions_misaligned_given(validator: Validator) -> None:
    issues = _errors(validator.validate(_load("patient-name-extensions.json")))
    assert [(i.code, i.expression) for i in issues] == [("structure", "Patient.name[0].given")]
    fixed = _load("patient-name-extensions.json")
    fixed["name"][0]["_given"].append(None)
    assert _errors(validator.validate(fixed)) == []


# Defects of the published hl7.fhir.r4.core 4.0.1 package itself.
CORE_PACKAGE_DEFECTS = {
    # Ten extension search parameters have no "base" (1..1).
    *(
        ("SearchParameter", f"{kind.lower()}-extensions-{kind}-{name}", "SearchParameter.base")
        for kind in ("CodeSystem", "ValueSet")
        for name in ("author", "effective", "end", "keyword", "workflow")
    ),
    # An id of 68 characters (the limit is 64).
    (
        "SearchParameter",
        "questionnaireresponse-extensions-QuestionnaireResponse-item-subject",
        "SearchParameter.id",
    ),
    # The logical models of the workflow patterns are not abstract and have no
    # baseDefinition: sdf-4.
    *(
        ("StructureDefinition", name, "StructureDefinition")
        for name in ("Definition", "Event", "FiveWs", "Request")
    ),
}


def test_core_package_resources_validate(validator: Validator) -> None:
    kinds = {
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "SearchParameter",
        "ConceptMap",
        "OperationDefinition",
        "CapabilityStatement",
        "CompartmentDefinition",
        "NamingSystem",
        "StructureMap",
    }
    found: set[tuple[str, str, str]] = set()
    count = 0
    for resource in iter_package_resources(find_package_tarball(), kinds):
        count += 1
        for issue in _errors(validator.validate(resource)):
            found.add((resource["resourceType"], resource["id"], issue.expression))
    assert count == 4578
    assert found == CORE_PACKAGE_DEFECTS
