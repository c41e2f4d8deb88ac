"""Evaluate one shipped measure over hand-written resources on an engine."""

from __future__ import annotations

from typing import Any

import pytest

from cmio.measures import MeasureResult, Period, builtin_measures, evaluate_measures
from tests.measures.builders import PERIOD, expected_counts, membership

ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def evaluate(
    measure_id: str, resources: list[dict[str, Any]], engine: str, request: Any
) -> MeasureResult:
    options: dict[str, Any] = {}
    if engine == "postgres":
        options["database"] = request.getfixturevalue("postgres_url")
    [result] = evaluate_measures(
        [builtin_measures()[measure_id]], Period.parse(PERIOD), resources, engine, **options
    )
    return result


def check(result: MeasureResult, expected: dict[str, str]) -> None:
    """Per patient flags, then per population counts, both from the hand-written answer."""
    wanted = {pid: flags for pid, flags in expected.items() if flags}
    assert membership(result) == wanted
    assert dict(result.counts) == expected_counts(wanted, result.counts)
