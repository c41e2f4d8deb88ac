"""Coded fields use codes that the HL7 V2-to-FHIR IG vocabulary maps know.

The interface engine maps v2 to FHIR with the IG's concept maps
(``../shared/specs/v2-to-fhir/codesystems`` beside the repository); every table-coded value the feeds emit
must be a source code of the map the IG names for that field. (PV1-36 is not
checked: the IG's DischargeDisposition map lists no v2 codes; the feeds send HL7 table
0112 codes.)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import hl7  # type: ignore[import-untyped]
import pytest

from tests.synth_hl7v2.conftest import Feeds, messages_of

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs" / "v2-to-fhir" / "codesystems"

pytestmark = pytest.mark.skipif(not SPECS.is_dir(), reason="v2-to-fhir tables not present")


def _codes(name: str) -> set[str]:
    prefix = f"HL7 Concept Map_ {name} - "
    (path,) = [p for p in SPECS.iterdir() if p.name.startswith(prefix)]
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return {row[0].strip() for row in rows[2:] if row and row[0].strip()}


def _repetitions(msg: Any, segment: str, field: int, component: int) -> list[str]:
    values = []
    for seg in msg.segments(segment):
        if len(seg) <= field or not str(seg[field]):
            continue
        for rep in seg[field]:
            parts = str(rep).split("^")
            if len(parts) >= component and parts[component - 1]:
                values.append(parts[component - 1])
    return values


Field = tuple[str, int, int, str]
FIELDS: list[Field] = [
    ("PID", 8, 1, "AdministrativeSex"),
    ("PID", 3, 5, "IdentifierType"),
    ("PID", 13, 2, "TelecommunicationUseCode"),
    ("PID", 13, 3, "TelecommunicationEquipmentType"),
    ("PID", 16, 1, "MaritalStatus"),
    ("PV1", 2, 1, "PatientClass[EncounterClass]"),
    ("PV1", 4, 1, "AdmissionType"),
    ("PV1", 10, 1, "HospitalService"),
    ("PV1", 19, 5, "IdentifierType"),
    ("IN1", 17, 1, "Relationship"),
    ("DG1", 6, 1, "DiagnosisType"),
    ("OBR", 24, 1, "DiagnosticServiceSectionID"),
    ("OBR", 25, 1, "ResultStatus[Non-Queries]"),
    ("OBX", 8, 1, "InterpretationCodes"),
    ("OBX", 11, 1, "ObservationResultStatusCodesInterpretation"),
    ("RXA", 20, 1, "CompletionStatus"),
    ("RXR", 1, 1, "RouteOfAdministration"),
]


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{f[0]}-{f[1]}.{f[2]}")
def test_coded_field_is_in_the_ig_map(feeds: Feeds, field: Field) -> None:
    segment, number, component, table = field
    known = _codes(table)
    sent: set[str] = set()
    for text in messages_of(feeds):
        if f"\r{segment}|" in text:
            sent.update(_repetitions(hl7.parse(text), segment, number, component))
    assert sent, f"no {segment}-{number} sent"
    assert sent <= known, sorted(sent - known)
