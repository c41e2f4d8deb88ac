"""Real data validates cleanly; the FHIRPath test inputs fail exactly where they should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.model import Model
from cmio.validation import Issue, validate_structure

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTHEA = SHARED / "data" / "synthea-r4"
BUNDLES = sorted((SYNTHEA / "bundles").glob("*.json"))
NDJSON = sorted(
    p for p in (SYNTHEA / "bulk-ndjson-10-patients-partial").glob("*.ndjson") if p.stem != "log"
)
FHIRPATH_INPUTS = SHARED / "conformance" / "fhirpath-r4" / "input-json"

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not available")


def _errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def test_corpus_is_present() -> None:
    assert len(BUNDLES) == 53
    assert len(NDJSON) == 13


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name[:24])
def test_synthea_bundle_entries_are_valid(model: Model, path: Path) -> None:
    bundle = orjson.loads(path.read_bytes())
    for i, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        assert _errors(validate_structure(model, resource)) == [], (i, resource.get("id"))


@pytest.mark.parametrize("path", BUNDLES[:3], ids=lambda p: p.name[:24])
def test_synthea_whole_bundles_are_valid(model: Model, path: Path) -> None:
    assert _errors(validate_structure(model, orjson.loads(path.read_bytes()))) == []


@pytest.mark.parametrize("path", NDJSON, ids=lambda p: p.name)
def test_bulk_ndjson_lines_are_valid(model: Model, path: Path) -> None:
    count = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                count += 1
                assert _errors(validate_structure(model, orjson.loads(line))) == [], number
    assert count > 0


VALID_FHIRPATH_INPUTS = [
    "appointment-examplereq.json",
    "codesystem-example.json",
    "observation-example.json",
    "parameters-example-types.json",
    "patient-example-period.json",
    "patient-example.json",
    "questionnaire-example.json",
    "valueset-example-expansion.json",
]


def _load(name: str) -> Any:
    return json.loads((FHIRPATH_INPUTS / name).read_text())


def test_fhirpath_inputs_are_all_covered() -> None:
    names = {p.name for p in FHIRPATH_INPUTS.glob("*.json")}
    assert names == set(VALID_FHIRPATH_INPUTS) | {
        "explanationofbenefit-example.json",
        "patient-container-example.json",
        "patient-name-extensions.json",
    }


@pytest.mark.parametrize("name", VALID_FHIRPATH_INPUTS)
def test_fhirpath_inputs_valid(model: Model, name: str) -> None:
    assert validate_structure(model, _load(name)) == []


def test_fhirpath_input_with_decimal_parsing(model: Model) -> None:
    from decimal import Decimal

    text = (FHIRPATH_INPUTS / "parameters-example-types.json").read_text()
    assert validate_structure(model, json.loads(text, parse_float=Decimal)) == []


def test_explanationofbenefit_fragment_misses_required_elements(model: Model) -> None:
    # The suite's EOB is a fragment: only supportingInfo and item are given.
    issues = validate_structure(model, _load("explanationofbenefit-example.json"))
    assert {i.code for i in issues} == {"required"}
    assert sorted(i.expression for i in issues) == sorted(
        [f"ExplanationOfBenefit.item[{n}].productOrService" for n in (0, 1)]
        + [
            f"ExplanationOfBenefit.{name}"
            for name in (
                "status",
                "type",
                "use",
                "patient",
                "created",
                "insurer",
                "provider",
                "outcome",
                "insurance",
            )
        ]
    )


def test_patient_container_reference_lacks_hash(model: Model) -> None:
    # "reference": "1" points at contained resource "1"; R4 requires "#1".
    issues = validate_structure(model, _load("patient-container-example.json"))
    assert [(i.code, i.expression) for i in issues] == [
        ("value", "Patient.managingOrganization.reference")
    ]


def test_patient_name_extensions_misaligned_given(model: Model) -> None:
    # given has 2 entries, _given only 1: JSON arrays must be aligned with nulls.
    issues = validate_structure(model, _load("patient-name-extensions.json"))
    assert [(i.code, i.expression) for i in issues] == [("structure", "Patient.name[0].given")]
    fixed = _load("patient-name-extensions.json")
    fixed["name"][0]["_given"].append(None)
    assert validate_structure(model, fixed) == []
