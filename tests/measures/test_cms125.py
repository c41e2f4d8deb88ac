"""CMS125 (Breast Cancer Screening) on a hand-written population."""

from __future__ import annotations

from typing import Any

import pytest

from tests.measures._run import ENGINES, check, evaluate
from tests.measures.builders import (
    CPT,
    HCPCS,
    ICD,
    LOINC,
    SNOMED,
    condition,
    patient,
    procedure,
    report,
    visit,
)

MAMMOGRAM = (LOINC, "24606-6")


def _woman(pid: str, birth: str = "1966-05-05", gender: str = "female") -> list[Any]:
    return [patient(pid, birth, gender), visit(pid, "2026-02-01")]


def population() -> tuple[list[dict[str, Any]], dict[str, str]]:
    r: list[dict[str, Any]] = []
    e: dict[str, str] = {}
    r += [*_woman("p01"), report("p01", MAMMOGRAM, "2025-06-01")]
    e["p01"] = "IDN"
    r += [*_woman("p02"), report("p02", MAMMOGRAM, "2024-10-01")]  # October 1 two years prior
    e["p02"] = "IDN"
    r += [*_woman("p03"), report("p03", MAMMOGRAM, "2024-09-30")]  # one day too early
    e["p03"] = "ID"
    r += _woman("p04")
    e["p04"] = "ID"
    r += _woman("p05", gender="male")
    e["p05"] = ""
    r += _woman("p06", "1974-12-31")  # 52 at the end of the period
    e["p06"] = "ID"
    r += _woman("p07", "1975-01-01")  # 51
    e["p07"] = ""
    r += _woman("p08", "1952-01-01")  # 74
    e["p08"] = "ID"
    r += _woman("p09", "1951-12-31")  # 75
    e["p09"] = ""
    r += [  # bilateral mastectomy and a mammogram: excluded, not numerator
        *_woman("p10"),
        procedure("p10", (SNOMED, "27865001"), "2015-03-01"),
        report("p10", MAMMOGRAM, "2026-03-01"),
    ]
    e["p10"] = "IDX"
    r += [
        *_woman("p11"),
        condition("p11", (ICD, "Z90.12"), "2018-01-01"),
        condition("p11", (ICD, "Z90.11"), "2020-01-01"),
    ]
    e["p11"] = "IDX"
    r += [*_woman("p12"), condition("p12", (ICD, "Z90.12"), "2018-01-01")]  # one side only
    e["p12"] = "ID"
    r += [*_woman("p13"), visit("p13", "2026-05-01", (HCPCS, "Q5004"))]  # hospice
    e["p13"] = "IDX"
    r += [*_woman("p14"), procedure("p14", (CPT, "77067"), "2026-03-01")]
    e["p14"] = "IDN"
    r += [*_woman("p15"), report("p15", MAMMOGRAM, "2026-12-31T20:00:00-05:00")]  # last day
    e["p15"] = "IDN"
    r += [*_woman("p16"), report("p16", MAMMOGRAM, "2026-03-01", status="preliminary")]
    e["p16"] = "ID"
    r += [*_woman("p17"), report("p17", MAMMOGRAM, "2027-01-01")]  # after the period
    e["p17"] = "ID"
    return r, e


@pytest.mark.parametrize("engine", ENGINES)
def test_cms125_hand_population(engine: str, request: Any) -> None:
    resources, expected = population()
    result = evaluate("CMS125", resources, engine, request)
    check(result, expected)
    gaps = {
        row["patient_id"]: row["gap_since"] for row in result.members.to_pylist() if row["care_gap"]
    }
    assert gaps["p03"] == "2024-09-30" and gaps["p04"] is None
    assert "p13" not in gaps and "p01" not in gaps
