"""CMS122 (HbA1c > 9%) on a hand-written population: boundaries, ties, exclusions."""

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
    claim,
    condition,
    observation,
    patient,
    visit,
)

A1C = (LOINC, "4548-4")
DIABETES = (ICD, "E11.9")


def _diabetic(pid: str, birth: str = "1980-05-05", **kwargs: Any) -> list[dict[str, Any]]:
    return [
        patient(pid, birth, **kwargs),
        condition(pid, DIABETES, "2020-01-01"),
        visit(pid, "2026-03-01"),
    ]


def population() -> tuple[list[dict[str, Any]], dict[str, str]]:
    r: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    r += [*_diabetic("p01"), observation("p01", A1C, "2026-03-01", 7.0)]
    expected["p01"] = "ID"
    r += [*_diabetic("p02"), observation("p02", A1C, "2026-05-01", 9.5)]
    expected["p02"] = "IDN"
    r += _diabetic("p03")  # no test: missing counts as poor control
    expected["p03"] = "IDN"
    r += [
        *_diabetic("p04"),
        observation("p04", A1C, "2026-02-01", 10.0),
        observation("p04", A1C, "2026-06-01", 8.0),
    ]
    expected["p04"] = "ID"
    r += [
        *_diabetic("p05"),
        observation("p05", A1C, "2026-02-01", 8.0),
        observation("p05", A1C, "2026-12-31T23:00:00-05:00", 9.5),  # last day of the period
    ]
    expected["p05"] = "IDN"
    r += [
        *_diabetic("p06"),  # two results the same day: the later one counts
        observation("p06", A1C, "2026-07-01T15:00:00-05:00", 9.2),
        observation("p06", A1C, "2026-07-01T09:00:00-05:00", 8.0),
    ]
    expected["p06"] = "IDN"
    r += [*_diabetic("p07"), observation("p07", A1C, "2026-08-01")]  # no result value
    expected["p07"] = "IDN"
    r += [*_diabetic("p08"), observation("p08", A1C, "2026-08-01", 9.0)]  # exactly 9: not > 9
    expected["p08"] = "ID"
    r += [*_diabetic("p09", "2008-12-31"), observation("p09", A1C, "2026-04-01", 6.0)]  # 18
    expected["p09"] = "ID"
    r += _diabetic("p10", "2009-01-01")  # 17 at the end of the period
    expected["p10"] = ""
    r += [*_diabetic("p11", "1951-01-01"), observation("p11", A1C, "2026-04-01", 6.0)]  # 75
    expected["p11"] = "ID"
    r += _diabetic("p12", "1950-12-31")  # 76
    expected["p12"] = ""
    r += [*_diabetic("p13"), observation("p13", A1C, "2025-12-31", 6.0)]  # before the period
    expected["p13"] = "IDN"
    r += [
        *_diabetic("p14"),  # hospice overlaps a poor-control result: excluded, not numerator
        visit("p14", "2026-09-01", (HCPCS, "Q5003")),
        observation("p14", A1C, "2026-05-01", 10.0),
    ]
    expected["p14"] = "IDX"
    r += [*_diabetic("p15"), condition("p15", (ICD, "Z51.5"), "2026-10-01")]  # palliative
    expected["p15"] = "IDX"
    r += [
        *_diabetic("p16", "1956-06-01"),  # 70: frailty and advanced illness
        condition("p16", (ICD, "R54"), "2026-02-01"),
        condition("p16", (ICD, "I50.9"), "2025-03-01"),
    ]
    expected["p16"] = "IDX"
    r += [*_diabetic("p17", "1956-06-01"), condition("p17", (ICD, "R54"), "2026-02-01")]
    expected["p17"] = "IDN"  # frailty alone does not exclude under 81 in CMS122
    r += [  # an emergency visit is not a qualifying encounter
        patient("p18", "1970-01-01"),
        condition("p18", DIABETES, "2020-01-01"),
        visit("p18", "2026-03-01", (SNOMED, "50849002"), cls="EMER"),
    ]
    expected["p18"] = ""
    r += [
        patient("p19", "1970-01-01"),
        condition("p19", DIABETES, "2020-01-01"),
        visit("p19", "2026-03-01", status="cancelled"),
    ]
    expected["p19"] = ""
    r += [
        patient("p20", "1970-01-01"),
        condition("p20", DIABETES, "2019-01-01", abatement="2025-06-01"),
        visit("p20", "2026-03-01"),
    ]
    expected["p20"] = ""
    r += [  # the visit qualifies by the CPT code billed for it
        patient("p21", "1970-01-01"),
        condition("p21", (SNOMED, "44054006"), "2020-01-01"),
        visit("p21", "2026-03-01", (SNOMED, "390906007"), eid="enc-p21"),
        claim("p21", "enc-p21", (CPT, "99214"), "2026-03-01"),
        observation("p21", A1C, "2026-03-01", 6.5),
    ]
    expected["p21"] = "ID"
    r += [*_diabetic("p22"), observation("p22", (LOINC, "97506-0"), "2026-06-01", 9.3)]  # GMI
    expected["p22"] = "IDN"
    r += [
        *_diabetic("p23"),
        observation("p23", A1C, "2026-03-01", 7.0),
        observation("p23", A1C, "2026-09-01", 11.0, status="entered-in-error"),
    ]
    expected["p23"] = "ID"
    r += [
        *_diabetic("p24", "1960-01-01"),  # 66, nursing facility for more than 90 days
        visit("p24", "2026-01-10", (CPT, "99304")),
        visit("p24", "2026-05-01", (CPT, "99308")),
        observation("p24", A1C, "2026-03-01", 7.0),
    ]
    expected["p24"] = "IDX"
    r += [patient("p25", "1970-01-01"), visit("p25", "2026-03-01")]  # not diabetic
    expected["p25"] = ""
    return r, expected


@pytest.mark.parametrize("engine", ENGINES)
def test_cms122_hand_population(engine: str, request: Any) -> None:
    resources, expected = population()
    result = evaluate("CMS122", resources, engine, request)
    check(result, expected)
    assert result.score == pytest.approx(
        sum("N" in f for f in expected.values())
        / sum("D" in f and "X" not in f for f in expected.values())
    )
    gaps = {row["patient_id"]: row for row in result.members.to_pylist() if row["care_gap"]}
    assert sorted(gaps) == sorted(p for p, f in expected.items() if "N" in f)
    assert gaps["p05"]["gap_since"] == "2026-12-31"
    assert gaps["p03"]["gap_since"] is None


@pytest.mark.slow
@pytest.mark.usefixtures("spark_one_partition")
def test_cms122_hand_population_spark(request: Any) -> None:
    resources, expected = population()
    check(evaluate("CMS122", resources, "spark", request), expected)
