"""CMS165 (Controlling High Blood Pressure) on a hand-written population."""

from __future__ import annotations

from typing import Any

import pytest

from tests.measures._run import ENGINES, check, evaluate
from tests.measures.builders import (
    CPT,
    ICD,
    LOINC,
    blood_pressure,
    condition,
    observation,
    patient,
    procedure,
    visit,
)

HTN = (ICD, "I10")


def _hypertensive(pid: str, birth: str = "1970-05-05", onset: str = "2020-01-01") -> list[Any]:
    return [patient(pid, birth), condition(pid, HTN, onset), visit(pid, "2026-02-01")]


def population() -> tuple[list[dict[str, Any]], dict[str, str]]:
    r: list[dict[str, Any]] = []
    e: dict[str, str] = {}
    r += [*_hypertensive("p01"), blood_pressure("p01", "2026-06-01", 130, 80)]
    e["p01"] = "IDN"
    r += [*_hypertensive("p02"), blood_pressure("p02", "2026-06-01", 150, 80)]
    e["p02"] = "ID"
    r += [
        *_hypertensive("p03"),
        blood_pressure("p03", "2026-02-01", 150, 95),
        blood_pressure("p03", "2026-11-30", 128, 78),
    ]
    e["p03"] = "IDN"
    r += [  # same day: lowest systolic (135) and lowest diastolic (85)
        *_hypertensive("p04"),
        blood_pressure("p04", "2026-10-10T09:00:00-05:00", 145, 85),
        blood_pressure("p04", "2026-10-10T11:00:00-05:00", 135, 92),
    ]
    e["p04"] = "IDN"
    r += _hypertensive("p05")  # no reading
    e["p05"] = "ID"
    r += [
        *_hypertensive("p06"),
        blood_pressure("p06", "2026-03-01", 150, 95),
        blood_pressure("p06", "2026-12-31T22:00:00-05:00", 120, 70),  # last day
    ]
    e["p06"] = "IDN"
    r += [*_hypertensive("p07"), blood_pressure("p07", "2026-05-01", 139, 89)]
    e["p07"] = "IDN"
    r += [*_hypertensive("p08"), blood_pressure("p08", "2026-05-01", 140, 89)]
    e["p08"] = "ID"
    r += [*_hypertensive("p09"), blood_pressure("p09", "2026-05-01", 139, 90)]
    e["p09"] = "ID"
    r += _hypertensive("p10", onset="2026-07-01")  # diagnosed after the first six months
    e["p10"] = ""
    r += [*_hypertensive("p11", onset="2026-06-30"), blood_pressure("p11", "2026-09-01", 120, 80)]
    e["p11"] = "IDN"
    r += [*_hypertensive("p12", "1941-12-31"), blood_pressure("p12", "2026-09-01", 120, 80)]
    e["p12"] = "IDN"  # 85 at the end of the period
    r += _hypertensive("p13", "1940-12-31")  # 86
    e["p13"] = ""
    r += [  # end-stage renal disease overlaps a controlled reading
        *_hypertensive("p14"),
        condition("p14", (ICD, "N18.6"), "2024-01-01"),
        blood_pressure("p14", "2026-09-01", 120, 80),
    ]
    e["p14"] = "IDX"
    r += [*_hypertensive("p15"), condition("p15", (ICD, "Z34.90"), "2026-03-01")]  # pregnancy
    e["p15"] = "IDX"
    r += [  # a reading in the emergency department does not count
        *_hypertensive("p16"),
        visit("p16", "2026-04-01", cls="EMER", eid="ed-p16"),
        blood_pressure("p16", "2026-04-01", 120, 80, encounter="ed-p16"),
    ]
    e["p16"] = "ID"
    r += [*_hypertensive("p17", "1944-06-01"), condition("p17", (ICD, "R54"), "2026-02-01")]
    e["p17"] = "IDX"  # 82 with frailty
    r += [*_hypertensive("p18", "1951-06-01"), condition("p18", (ICD, "R54"), "2026-02-01")]
    e["p18"] = "ID"  # 75 with frailty but no advanced illness
    r += [*_hypertensive("p19"), procedure("p19", (CPT, "50360"), "2019-05-01")]  # transplant
    e["p19"] = "IDX"
    r += [  # separate systolic and diastolic observations
        *_hypertensive("p20"),
        observation("p20", (LOINC, "8480-6"), "2026-08-01", 120),
        observation("p20", (LOINC, "8462-4"), "2026-08-01", 70),
    ]
    e["p20"] = "IDN"
    return r, e


@pytest.mark.parametrize("engine", ENGINES)
def test_cms165_hand_population(engine: str, request: Any) -> None:
    resources, expected = population()
    check(evaluate("CMS165", resources, engine, request), expected)
