"""Generated edge cases: date precision, timezones, quantity units, missing values."""

from __future__ import annotations

from typing import Any

__all__ = ["edge_cases"]


def _obs(id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/edge-p1"},
    }
    base.update(fields)
    return base


def edge_cases() -> list[dict[str, Any]]:
    """Hand-made resources whose expected matches are easy to reason about."""
    ucum = "http://unitsofmeasure.org"
    return [
        {
            "resourceType": "Patient",
            "id": "edge-p1",
            "name": [{"family": "Ñúñez", "given": ["José"]}],
            "birthDate": "1959",
            "gender": "female",
            "meta": {"tag": [{"system": "http://t", "code": "x"}], "profile": ["http://p/a"]},
        },
        {
            "resourceType": "Patient",
            "id": "edge-p2",
            "name": [{"family": "Smith", "given": ["Ann"]}],
            "birthDate": "1960-01-01",
            "generalPractitioner": [{"reference": "Practitioner/edge-dr"}],
        },
        {"resourceType": "Patient", "id": "edge-p3"},  # nothing to match: missing values
        {
            "resourceType": "Practitioner",
            "id": "edge-dr",
            "name": [{"family": "House", "given": ["Greg"]}],
        },
        _obs(
            "edge-o1",
            valueQuantity={"value": 70, "system": ucum, "code": "kg"},
            effectiveDateTime="2024-03-01T23:30:00-05:00",
        ),
        _obs(
            "edge-o2",
            valueQuantity={"value": 70000, "system": ucum, "code": "g"},
            effectiveDateTime="2024-03-02",
        ),
        _obs(
            "edge-o3",
            valueQuantity={"value": 70.4, "system": ucum, "code": "kg"},
            effectivePeriod={"start": "2024-01-01", "end": "2024-06-30"},
        ),
        _obs("edge-o4", valueQuantity={"value": 154, "unit": "lb"}, effectiveDateTime="2024"),
        _obs(
            "edge-o5",
            subject={"reference": "Patient/edge-p2"},
            effectivePeriod={"start": "2023-12-31T23:00:00Z"},
        ),
        _obs("edge-o6", code={"text": "Free text only"}),
        _obs(  # a dateTime value (LOINC 8665-2, last menstrual period start)
            "edge-lmp",
            code={"coding": [{"system": "http://loinc.org", "code": "8665-2"}]},
            subject={"reference": "Patient/edge-p3"},
            valueDateTime="2024-02-10",
        ),
        _obs(
            "edge-bp",
            code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            component=[
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 150, "system": ucum, "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 70, "system": ucum, "code": "mm[Hg]"},
                },
            ],
        ),
        {
            "resourceType": "Encounter",
            "id": "edge-enc",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/edge-p2"},
            "participant": [{"individual": {"reference": "Practitioner/edge-dr"}}],
        },
        _obs(
            "edge-o7",
            encounter={"reference": "Encounter/edge-enc"},
            performer=[{"reference": "Practitioner/edge-dr"}],
        ),
        {
            "resourceType": "List",
            "id": "edge-list",
            "status": "current",
            "mode": "working",
            "entry": [
                {"item": {"reference": "Patient/edge-p1"}},
                {"item": {"reference": "Observation/edge-o1"}},
                {"item": {"reference": "Patient/edge-p3"}},
            ],
        },
        {
            "resourceType": "List",
            "id": "edge-list2",
            "status": "current",
            "mode": "snapshot",
            "entry": [{"item": {"reference": "Patient/edge-p2"}}],
        },
    ]
