"""CMS130 (Colorectal Cancer Screening) on a hand-written population."""

from __future__ import annotations

from typing import Any

import pytest

from tests.measures._run import ENGINES, check, evaluate
from tests.measures.builders import (
    CPT,
    ICD,
    LOINC,
    SNOMED,
    condition,
    medication_request,
    observation,
    patient,
    procedure,
    visit,
)

COLONOSCOPY = (SNOMED, "73761001")
FIT = (LOINC, "29771-3")
NEGATIVE = "260385009"


def _adult(pid: str, birth: str = "1970-05-05") -> list[Any]:
    return [patient(pid, birth, "male"), visit(pid, "2026-02-01")]


def population() -> tuple[list[dict[str, Any]], dict[str, str]]:
    r: list[dict[str, Any]] = []
    e: dict[str, str] = {}
    r += [*_adult("p01"), procedure("p01", COLONOSCOPY, "2017-01-01")]  # 9 years before start
    e["p01"] = "IDN"
    r += [*_adult("p02"), procedure("p02", COLONOSCOPY, "2016-12-31")]
    e["p02"] = "ID"
    r += [*_adult("p03"), observation("p03", FIT, "2026-05-01", value_code=NEGATIVE)]
    e["p03"] = "IDN"
    r += [*_adult("p04"), observation("p04", FIT, "2025-12-31", value_code=NEGATIVE)]
    e["p04"] = "ID"
    r += [*_adult("p05"), observation("p05", FIT, "2026-05-01")]  # no result
    e["p05"] = "ID"
    r += [*_adult("p06"), observation("p06", (LOINC, "77353-1"), "2024-01-01", value_code=NEGATIVE)]
    e["p06"] = "IDN"
    r += [*_adult("p07"), observation("p07", (LOINC, "60515-4"), "2022-01-01")]  # CT colonography
    e["p07"] = "IDN"
    r += [*_adult("p08"), procedure("p08", (CPT, "45330"), "2021-12-31")]  # sigmoidoscopy, too old
    e["p08"] = "ID"
    r += _adult("p09", "1980-12-31")  # 46 at the end (45 at the start)
    e["p09"] = "ID"
    r += _adult("p10", "1981-01-01")  # 45 at the end
    e["p10"] = ""
    r += _adult("p11", "1951-01-01")  # 75
    e["p11"] = "ID"
    r += _adult("p12", "1950-12-31")  # 76
    e["p12"] = ""
    r += [  # colorectal cancer overlaps a colonoscopy: excluded
        *_adult("p13"),
        condition("p13", (ICD, "C18.9"), "2020-01-01"),
        procedure("p13", COLONOSCOPY, "2025-01-01"),
    ]
    e["p13"] = "IDX"
    r += [*_adult("p14"), procedure("p14", (CPT, "44150"), "2010-01-01")]  # total colectomy
    e["p14"] = "IDX"
    r += [  # 70: frailty encounter and a dementia medication the year before
        *_adult("p15", "1956-03-01"),
        visit("p15", "2026-04-01", (CPT, "99504")),
        medication_request("p15", "997223", "2025-06-01"),
    ]
    e["p15"] = "IDX"
    r += _adult("p16")
    e["p16"] = "ID"
    r += [*_adult("p17"), procedure("p17", COLONOSCOPY, "2022-01-01", status="not-done")]
    e["p17"] = "ID"
    r += [*_adult("p18"), procedure("p18", (CPT, "45330"), "2022-06-01")]  # sigmoidoscopy 5 y
    e["p18"] = "IDN"
    return r, e


@pytest.mark.parametrize("engine", ENGINES)
def test_cms130_hand_population(engine: str, request: Any) -> None:
    resources, expected = population()
    check(evaluate("CMS130", resources, engine, request), expected)
