"""Measure tables refreshed incrementally give the results of a full evaluation."""

from __future__ import annotations

from typing import Any

from cmio.measures import Period, builtin_measures, evaluate_measures
from cmio.measures.incremental import MeasureTables
from tests.measures import test_cms122
from tests.measures.builders import PERIOD


def _rows(results: list[Any]) -> list[Any]:
    return [r.members.sort_by("patient_id").to_pylist() for r in results]


def test_apply_new_and_changed_resources_matches_a_full_run() -> None:
    resources, _ = test_cms122.population()
    measure = builtin_measures()["CMS122"]
    period = Period.parse(PERIOD)
    day = [r for r in resources if r["resourceType"] == "Observation"][-6:]
    base = [r for r in resources if r not in day]
    changed = dict(next(r for r in base if r["resourceType"] == "Observation"))
    changed["valueQuantity"] = {"value": 12.5}  # a corrected result
    tables = MeasureTables()
    try:
        [before] = tables.evaluate([measure], period, source=base)
        assert "mp_observation" in tables.tables()
        inserted = tables.apply([*day, changed])
        assert inserted["mp_observation"] == 7
        [after] = tables.evaluate([measure], period)
    finally:
        tables.close()
    final = [r for r in base if r["id"] != changed["id"]] + day + [changed]
    [full] = evaluate_measures([measure], period, final)
    assert _rows([after]) == _rows([full])
    assert _rows([before]) != _rows([after])


def test_refresh_recomputes_only_touched_patients_and_matches_a_full_run() -> None:
    resources, _ = test_cms122.population()
    measures = [builtin_measures()["CMS122"], builtin_measures()["CMS2"]]
    period = Period.parse(PERIOD)
    day = [r for r in resources if r["resourceType"] == "Observation"][-6:]
    base = [r for r in resources if r not in day]
    tables = MeasureTables()
    try:
        before = tables.evaluate(measures, period, source=base)
        refreshed = tables.refresh(before, day)
    finally:
        tables.close()
    full = evaluate_measures(measures, period, base + day)
    assert _rows(refreshed) == _rows(full)
    for got, want in zip(refreshed, full, strict=True):
        assert dict(got.counts) == dict(want.counts)
        assert got.score == want.score
        assert got.strata.to_pylist() == want.strata.to_pylist()
