"""CMS2 (Depression Screening and Follow-Up) on a hand-written population."""

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
    service_request,
    visit,
)

PHQ9 = (LOINC, "44261-6")
REFERRAL = (SNOMED, "306226009")


def _seen(pid: str, birth: str = "1990-05-05") -> list[Any]:
    return [patient(pid, birth), visit(pid, "2026-04-01")]


def population() -> tuple[list[dict[str, Any]], dict[str, str]]:
    r: list[dict[str, Any]] = []
    e: dict[str, str] = {}
    r += [*_seen("p01"), observation("p01", PHQ9, "2026-04-01", 3)]
    e["p01"] = "IDN"
    r += [
        *_seen("p02"),
        observation("p02", PHQ9, "2026-04-01", 15),
        service_request("p02", REFERRAL, "2026-04-01"),
    ]
    e["p02"] = "IDN"
    r += [*_seen("p03"), observation("p03", PHQ9, "2026-04-01", 15)]  # positive, no follow-up
    e["p03"] = "ID"
    r += [
        *_seen("p04"),
        observation("p04", PHQ9, "2026-04-01", 15),
        service_request("p04", REFERRAL, "2026-04-02"),  # the next day is too late
    ]
    e["p04"] = "ID"
    r += [
        *_seen("p05"),
        observation("p05", PHQ9, "2026-03-01", 15),
        medication_request("p05", "310385", "2026-03-01"),
        observation("p05", PHQ9, "2026-09-01", 4),
    ]
    e["p05"] = "IDN"
    r += [
        *_seen("p06"),
        observation("p06", PHQ9, "2026-03-01", 4),
        observation("p06", PHQ9, "2026-12-31T21:00:00-05:00", 12),  # last day, positive
    ]
    e["p06"] = "ID"
    r += _seen("p07")
    e["p07"] = "ID"
    r += _seen("p08", "2014-01-01")  # 12 at the start of the period
    e["p08"] = "ID"
    r += _seen("p09", "2014-01-02")  # 11
    e["p09"] = ""
    r += [  # depression diagnosed before: excluded even when screened negative
        *_seen("p10"),
        condition("p10", (ICD, "F32.9"), "2025-01-01"),
        observation("p10", PHQ9, "2026-04-01", 2),
    ]
    e["p10"] = "IDX"
    r += [*_seen("p11"), condition("p11", (ICD, "F31.9"), "2026-06-01")]  # after the visit
    e["p11"] = "ID"
    r += [*_seen("p12"), observation("p12", PHQ9, "2026-04-01", status="cancelled")]
    e["p12"] = "IDE"
    r += [
        *_seen("p13"),
        observation("p13", PHQ9, "2026-02-01", status="cancelled"),
        observation("p13", PHQ9, "2026-04-01", 1),
    ]
    e["p13"] = "IDN"
    r += [
        *_seen("p14"),
        observation("p14", (LOINC, "55758-7"), "2026-04-01", 3),  # PHQ-2 positive
        procedure("p14", (SNOMED, "10197000"), "2026-04-01"),
    ]
    e["p14"] = "IDN"
    r += [
        *_seen("p15"),
        observation("p15", (LOINC, "73832-8"), "2026-04-01", value_code="428181000124104"),
    ]
    e["p15"] = "ID"
    r += [patient("p16", "1990-01-01"), visit("p16", "2026-04-01", (CPT, "99211"))]
    e["p16"] = ""
    r += [  # negative and positive the same day: the positive one needs its follow-up
        *_seen("p17"),
        observation("p17", PHQ9, "2026-04-01T09:00:00-05:00", 3),
        observation("p17", PHQ9, "2026-04-01T10:00:00-05:00", 14),
    ]
    e["p17"] = "ID"
    return r, e


@pytest.mark.parametrize("engine", ENGINES)
def test_cms2_hand_population(engine: str, request: Any) -> None:
    resources, expected = population()
    check(evaluate("CMS2", resources, engine, request), expected)
