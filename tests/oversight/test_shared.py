"""Shared work (:mod:`cmio.oversight.shared`): the quality and cost summaries computed
with it equal their own computations, a measure is evaluated once per window whoever
asks, and the steering report's previous-period headlines derived from this period's
summary equal those of the previous period's own summary."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from cmio.oversight.cost import cost_summary
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.quality import headlines, previous_headlines, quality_summary, trend_months
from cmio.oversight.shared import SharedWork


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportingPeriod]:
    """20 synthetic patients (NDJSON) and the last quarter of their care."""
    from cmio.synth import SynthConfig, generate

    folder = tmp_path_factory.mktemp("shared-synth")
    generate(SynthConfig(20, folder, years=1.0, seed=5, workers=1), lambda n: None)
    starts = [
        json.loads(line).get("period", {}).get("start", "")
        for line in (folder / "Encounter.ndjson").read_text().splitlines()
    ]
    last = date.fromisoformat(max(starts)[:10])
    return folder, ReportingPeriod.parse(f"{last.year}-Q{(last.month - 1) // 3 + 1}")


@pytest.mark.slow
def test_summaries_with_shared_work_equal_their_own(synth: tuple[Path, ReportingPeriod]) -> None:
    folder, period = synth
    work = SharedWork(folder)
    try:
        shared = quality_summary(folder, period, shared=work)
        windows = len(trend_months(period)) + 1  # the trend's month ends and the previous period
        assert work.evaluations == 5 * windows  # five measures, each window once
        own = quality_summary(folder, period)
        assert replace(shared, seconds=0) == replace(own, seconds=0)
        # the cost summary evaluates the same measures over the period: only its
        # attribution panel is new
        assert cost_summary(folder, period, shared=work) == cost_summary(folder, period)
        assert work.evaluations == 5 * windows + 1
        # the previous period's own summary: its last window was evaluated already
        before = quality_summary(folder, period.previous(), shared=work)
        assert [h.value for h in previous_headlines(shared)] == [h.value for h in headlines(before)]
        assert [h.label for h in previous_headlines(shared)] == [h.label for h in headlines(before)]
    finally:
        work.close()


def test_once_computes_a_value_once() -> None:
    work = SharedWork([])
    calls: list[int] = []
    assert work.once("x", lambda: calls.append(1) or 7) == 7
    assert work.once("x", lambda: calls.append(1) or 8) == 7
    assert calls == [1]
    assert work.fresh and not SharedWork([], ttl=-1.0).fresh
