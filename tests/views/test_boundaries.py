"""lowBoundary()/highBoundary() in SQL agree with the FHIRPath engine on partial values."""

from __future__ import annotations

from typing import Any

import pytest

from tests.views.conftest import ViewRunner

OBSERVATIONS = [
    ("o1", {"valueDateTime": "2014"}),
    ("o2", {"valueDateTime": "2014-02"}),
    ("o3", {"valueDateTime": "2016-02-10T08:30"}),
    ("o4", {"valueDateTime": "2016-02-10T08:30:15+02:00"}),
    ("o5", {"valueDateTime": "2016-02-10T08:30:15.5Z"}),
    ("o6", {"valueTime": "08"}),
    ("o7", {"valueTime": "08:30"}),
    ("o8", {"valueQuantity": {"value": 12}}),
    ("o9", {"valueQuantity": {"value": -0.125}}),
    ("o10", {"valueQuantity": {"value": 3.5}}),
]


def _resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"text": "x"},
            **value,
        }
        for oid, value in OBSERVATIONS
    ]
    out += [
        {"resourceType": "Patient", "id": "p1", "birthDate": "2000"},
        {"resourceType": "Patient", "id": "p2", "birthDate": "2000-02"},
        {"resourceType": "Patient", "id": "p3", "birthDate": "2001-02-03"},
    ]
    return out


def _column(name: str, path: str, ftype: str) -> dict[str, str]:
    return {"name": name, "path": path, "type": ftype}


VIEWS = [
    {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    _column("id", "id", "id"),
                    _column("dt_low", "value.ofType(dateTime).lowBoundary()", "dateTime"),
                    _column("dt_high", "value.ofType(dateTime).highBoundary()", "dateTime"),
                    _column("t_low", "value.ofType(time).lowBoundary()", "time"),
                    _column("t_high", "value.ofType(time).highBoundary()", "time"),
                    _column("q_low", "value.ofType(Quantity).value.lowBoundary()", "decimal"),
                    _column("q_high", "value.ofType(Quantity).value.highBoundary()", "decimal"),
                ]
            }
        ],
    },
    {
        "resource": "Patient",
        "select": [
            {
                "column": [
                    _column("id", "id", "id"),
                    _column("low", "birthDate.lowBoundary()", "date"),
                    _column("high", "birthDate.highBoundary()", "date"),
                ]
            }
        ],
    },
]


ENGINES = ["duckdb"]
"""SQL engines whose dialect compiles the boundary functions (others refuse them by name)."""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("view", VIEWS, ids=["observation", "patient"])
def test_boundaries_match_the_reference(
    view: dict[str, Any],
    engine: str,
    request: pytest.FixtureRequest,
    view_runner_memory: ViewRunner,
) -> None:
    view_runner: ViewRunner = request.getfixturevalue(f"view_runner_{engine}")
    expected = sorted(view_runner_memory(view, _resources()).to_pylist(), key=lambda r: r["id"])
    actual = sorted(view_runner(view, _resources()).to_pylist(), key=lambda r: r["id"])
    assert actual == expected
    if view["resource"] == "Patient":
        assert expected[1] == {"id": "p2", "low": "2000-02-01", "high": "2000-02-29"}
