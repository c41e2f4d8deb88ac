"""Engines agree with the reference evaluator on a synthetic health system (cmio synth).

Realistic views (demographics with US Core extensions, observations with codings
and components, conditions with unionAll, encounters, medication requests) over
the Bulk NDJSON folder ``cmio synth`` writes: DuckDB's rows equal the in-memory
evaluator's, cell for cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cmio.synth import SynthConfig, generate
from cmio.views import DuckDbRunner, load_view
from tests.views.conftest import ViewRunner

VIEWS: list[dict[str, Any]] = [
    {
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "gender", "path": "gender", "type": "code"},
                    {"name": "birth", "path": "birthDate", "type": "date"},
                    {
                        "name": "race",
                        "path": "extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension('ombCategory').value.ofType(Coding).code.first()",
                        "type": "code",
                    },
                    {
                        "name": "family",
                        "path": "name.where(use='official').family.first()",
                        "type": "string",
                    },
                    {"name": "given", "path": "name.given", "type": "string", "collection": True},
                    {"name": "deceased", "path": "deceased.exists()", "type": "boolean"},
                    {"name": "city", "path": "address.city.first()", "type": "string"},
                    {
                        "name": "phones",
                        "path": "telecom.where(system='phone').value",
                        "collection": True,
                        "type": "string",
                    },
                ]
            }
        ],
    },
    {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {
                        "name": "patient",
                        "path": "subject.getReferenceKey(Patient)",
                        "type": "string",
                    },
                    {"name": "status", "path": "status", "type": "code"},
                    {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                    {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                    {
                        "name": "vstr",
                        "path": "value.ofType(CodeableConcept).coding.code.first()",
                        "type": "code",
                    },
                    {"name": "eff", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                ]
            },
            {
                "forEach": "code.coding",
                "column": [
                    {"name": "system", "path": "system", "type": "uri"},
                    {"name": "code", "path": "code", "type": "code"},
                    {"name": "i", "path": "%rowIndex", "type": "integer"},
                ],
            },
            {
                "forEachOrNull": "component",
                "column": [
                    {"name": "ccode", "path": "code.coding.code.first()", "type": "code"},
                    {"name": "cval", "path": "value.ofType(Quantity).value", "type": "decimal"},
                ],
            },
        ],
        "where": [{"path": "status = 'final' or status = 'amended'"}],
    },
    {
        "resource": "Condition",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {
                        "name": "patient",
                        "path": "subject.getReferenceKey(Patient)",
                        "type": "string",
                    },
                    {
                        "name": "clinical",
                        "path": "clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-clinical').code.first()",
                        "type": "code",
                    },
                    {"name": "onset", "path": "onset.ofType(dateTime)", "type": "dateTime"},
                    {
                        "name": "onset_low",
                        "path": "onset.ofType(dateTime).lowBoundary()",
                        "type": "dateTime",
                    },
                ]
            },
            {
                "unionAll": [
                    {
                        "forEach": "code.coding",
                        "column": [
                            {"name": "sys", "path": "system", "type": "uri"},
                            {"name": "cd", "path": "code", "type": "code"},
                        ],
                    },
                    {
                        "forEach": "category.coding",
                        "column": [
                            {"name": "sys", "path": "system", "type": "uri"},
                            {"name": "cd", "path": "code", "type": "code"},
                        ],
                    },
                ]
            },
        ],
    },
    {
        "resource": "Encounter",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {"name": "cls", "path": "class.code", "type": "code"},
                    {"name": "start", "path": "period.start", "type": "dateTime"},
                    {"name": "end", "path": "period.end", "type": "dateTime"},
                    {"name": "n_part", "path": "participant.count()", "type": "integer"},
                    {
                        "name": "reason",
                        "path": "reasonCode.coding.code.join('|')",
                        "type": "string",
                    },
                ]
            },
            {
                "forEachOrNull": "location",
                "column": [
                    {"name": "loc", "path": "location.getReferenceKey(Location)", "type": "string"}
                ],
            },
        ],
    },
    {
        "resource": "MedicationRequest",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {
                        "name": "med",
                        "path": "medication.ofType(CodeableConcept).coding.code.first()",
                        "type": "code",
                    },
                    {"name": "authored", "path": "authoredOn", "type": "dateTime"},
                    {
                        "name": "dose",
                        "path": "dosageInstruction.first().doseAndRate.first().dose.ofType(Quantity).value",
                        "type": "decimal",
                    },
                    {"name": "active", "path": "status = 'active'", "type": "boolean"},
                ]
            }
        ],
    },
]


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(12, out, years=1, seed=5))
    return out


def _key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


@pytest.mark.parametrize("view", VIEWS, ids=[v["resource"] for v in VIEWS])
def test_duckdb_equals_memory_on_synthetic_data(
    view: dict[str, Any], synth_folder: Path, view_runner_memory: ViewRunner, model: Any
) -> None:
    parsed = load_view(view)
    lines = (synth_folder / f"{parsed.resource}.ndjson").read_text().splitlines()
    resources = [json.loads(line) for line in lines if line]
    expected = sorted(map(_key, view_runner_memory(view, resources).to_pylist()))
    actual = sorted(map(_key, DuckDbRunner(model, threads=2).run(parsed, synth_folder).to_pylist()))
    assert expected, "the synthetic data has rows for this view"
    assert actual == expected
