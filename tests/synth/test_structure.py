"""Every resource is structurally valid R4, ids are unique and every reference resolves."""

from __future__ import annotations

import re
from collections import Counter

from cmio.model import Model
from cmio.validation import validate_structure

from .conftest import Generated

REFERENCE = re.compile(rb'"reference":"([^"]+)"')


def test_every_resource_is_valid(generated: Generated, model: Model) -> None:
    problems: Counter[str] = Counter()
    for resources in generated.by_type.values():
        for resource in resources:
            for issue in validate_structure(model, resource):
                problems[f"{resource['resourceType']}: {issue}"] += 1
    assert not problems, problems.most_common(10)


def test_ids_unique_and_references_resolve(generated: Generated) -> None:
    keys = [f"{t}/{r['id']}" for t, rs in generated.by_type.items() for r in rs]
    assert len(keys) == len(set(keys))
    known = set(keys)
    missing: Counter[str] = Counter()
    total = 0
    for line in generated.lines():
        for match in REFERENCE.finditer(line):
            total += 1
            ref = match.group(1).decode()
            if ref not in known:
                missing[ref.partition("/")[0]] += 1
    assert total > 100_000
    assert not missing, missing


def test_expected_resource_types(generated: Generated) -> None:
    expected = {
        "Organization", "Location", "Practitioner", "PractitionerRole", "Schedule", "Slot",
        "Appointment", "Patient", "Coverage", "Encounter", "Condition", "Observation",
        "MedicationRequest", "Procedure", "Immunization", "DiagnosticReport", "ServiceRequest",
        "AllergyIntolerance", "Claim", "ExplanationOfBenefit", "AuditEvent", "DocumentReference",
        "Provenance", "Communication", "Task", "Device",
    }  # fmt: skip
    assert expected <= set(generated.by_type)
