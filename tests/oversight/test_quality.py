"""The quality summary: rates, counts, strata, trend points, previous period and care gaps
are the measure framework's own results on the same data (computed here, not written
down), strata add up to the totals, and the tiles and report sections carry them."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cmio.measures import MeasureResult, MeasureRunner, Period, builtin_measures, evaluate_measures
from cmio.measures.engines import open_engine
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.quality import (
    STRATIFIERS,
    TARGETS,
    Counts,
    MeasureQuality,
    QualitySummary,
    headlines,
    quality_summary,
    report_sections,
    trend_months,
)
from cmio.reports import Chart, Report, Table, render_html

Computed = tuple[QualitySummary, dict[str, dict[str, MeasureResult]], Path]


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> Computed:
    """30 synthetic patients (NDJSON), the summary of the last quarter of their care, and
    the framework's own results for that quarter, its first month and the quarter before."""
    from cmio.synth import SynthConfig, generate

    folder = tmp_path_factory.mktemp("quality-synth")
    generate(SynthConfig(30, folder, years=1.0, seed=3, workers=1), lambda n: None)
    starts = [
        json.loads(line).get("period", {}).get("start", "")
        for line in (folder / "Encounter.ndjson").read_text().splitlines()
    ]
    last = date.fromisoformat(max(starts)[:10])
    period = ReportingPeriod.parse(f"{last.year}-Q{(last.month - 1) // 3 + 1}")
    summary = quality_summary(folder, period)
    measures = list(builtin_measures().values())
    direct: dict[str, dict[str, MeasureResult]] = {}
    whole = evaluate_measures(measures, Period(period.start, period.end), folder)
    direct["period"] = {r.measure.id: r for r in whole}
    engine = open_engine("duckdb")
    try:
        runner = MeasureRunner(engine)
        first = period.months()[0]
        month = ReportingPeriod.parse(first)
        for key, span in (
            ("first", Period(period.start, month.end)),
            ("previous", Period(period.previous().start, period.previous().end)),
        ):
            direct[key] = {r.measure.id: r for r in runner.evaluate(measures, span, folder)}
    finally:
        engine.close()
    return summary, direct, folder


def _expected(result: MeasureResult) -> Counts:
    c = result.counts
    den = c.get("denominator", 0) - c.get("denominator_exclusion", 0)
    den -= c.get("denominator_exception", 0)
    num = c.get("numerator", 0) - c.get("numerator_exclusion", 0)
    excl = c.get("denominator_exclusion", 0) + c.get("denominator_exception", 0)
    gaps = len([g for g in result.members["care_gap"].to_pylist() if g])
    return Counts(c["initial_population"], den, num, excl, gaps, result.score)


def test_rates_and_counts_are_the_framework_results(computed: Computed) -> None:
    summary, direct, _ = computed
    assert [m.id for m in summary.measures] == ["CMS122", "CMS125", "CMS130", "CMS165", "CMS2"]
    assert sum(m.counts.denominator for m in summary.measures) > 20
    for m in summary.measures:
        result = direct["period"][m.id]
        assert m.counts == _expected(result)
        assert m.rate == pytest.approx(result.score)
        assert m.previous == _expected(direct["previous"][m.id])
        assert m.inverse == (m.id == "CMS122")
        assert m.target == TARGETS[m.id]


def test_strata_partition_the_totals_and_match_the_framework_strata(computed: Computed) -> None:
    summary, direct, _ = computed
    for m in summary.measures:
        framework = {
            (r["stratifier"], r["stratum"]): r for r in direct["period"][m.id].strata.to_pylist()
        }
        for stratifier in STRATIFIERS:
            strata = m.strata_of(stratifier)
            assert strata, (m.id, stratifier)
            for field in ("initial_population", "denominator", "numerator", "exclusions", "gaps"):
                total = sum(getattr(s.counts, field) for s in strata)
                assert total == getattr(m.counts, field), (m.id, stratifier, field)
            for s in strata:
                row = framework[(stratifier, s.value)]
                assert s.counts.initial_population == row["initial_population"]
                if s.counts.rate is None:
                    assert row["score"] is None
                else:
                    assert s.counts.rate == pytest.approx(row["score"])
    cms125 = summary.measure("CMS125")
    assert {s.value for s in cms125.strata_of("sex")} == {"female"}
    assert all(
        s.label.startswith(("Dr", "Not recorded")) or " " in s.label
        for s in cms125.strata_of("clinician")
    )
    races = {s.label for m in summary.measures for s in m.strata_of("race")}
    assert races & {"White", "Black or African American", "Asian"}


def test_gaps_are_denominator_minus_numerator(computed: Computed) -> None:
    summary, direct, _ = computed
    for m in summary.measures:
        result = direct["period"][m.id]
        denominator = set(result.patients("denominator"))
        denominator -= set(result.patients("denominator_exclusion"))
        denominator -= set(result.patients("denominator_exception"))
        numerator = set(result.patients("numerator"))
        expected = numerator & denominator if m.inverse else denominator - numerator
        gaps = [g.patient_id for g in m.gaps]
        assert len(gaps) == len(set(gaps)) == m.counts.gaps
        assert set(gaps) == expected, m.id
        rows = {r["patient_id"]: r for r in result.members.to_pylist()}
        for gap in m.gaps:
            assert gap.clinician == rows[gap.patient_id]["strat_clinician"]
            assert gap.since == (rows[gap.patient_id]["gap_since"] or "")
        assert [g.since for g in m.gaps] == sorted(g.since for g in m.gaps)


def test_trend_points_are_period_to_date_evaluations(computed: Computed) -> None:
    summary, direct, _ = computed
    for m in summary.measures:
        assert [p.month for p in m.trend] == summary.period.months()
        assert m.trend[-1].counts == m.counts
        assert m.trend[-1].end == summary.period.end
        assert m.trend[0].counts == _expected(direct["first"][m.id])


def test_trend_months() -> None:
    year = ReportingPeriod.parse("2025")
    assert trend_months(year) == ["2025-03", "2025-06", "2025-09", "2025-12"]
    assert len(trend_months(year, "month")) == 12
    assert trend_months(ReportingPeriod.parse("2025-Q2")) == ["2025-04", "2025-05", "2025-06"]
    assert trend_months(ReportingPeriod.parse("2025-02/2025-11"), "quarter") == [
        "2025-03",
        "2025-06",
        "2025-09",
        "2025-11",
    ]
    with pytest.raises(ValueError, match="granularity"):
        trend_months(year, "week")


def _measure(
    rate: float | None, *, inverse: bool, target: float, before: float | None
) -> MeasureQuality:
    def counts(value: float | None) -> Counts:
        return Counts(10, 10, round((value or 0) * 10), 0, 0, value)

    return MeasureQuality(
        "X", "X1", "X", "X", inverse, target, "", counts(rate),
        counts(before) if before is not None else None, (), (), (),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rate", "inverse", "status"),
    [
        (0.7, False, "good"),
        (0.66, False, "warn"),
        (0.6, False, "bad"),
        (0.2, True, "good"),
        (0.24, True, "warn"),
        (0.4, True, "bad"),
        (None, False, ""),
    ],
)
def test_status_against_target(rate: float | None, inverse: bool, status: str) -> None:
    measure = _measure(rate, inverse=inverse, target=0.2 if inverse else 0.7, before=0.5)
    assert measure.status == status
    if rate is not None:
        assert measure.delta == pytest.approx(rate - 0.5)
    assert measure.target_text == ("target <= 20%" if inverse else "target >= 70%")


def test_headlines_and_report_sections_carry_the_numbers(computed: Computed) -> None:
    summary, direct, _ = computed
    tiles = headlines(summary)
    assert [t.area for t in tiles] == ["quality"] * 5
    for tile, m in zip(tiles, summary.measures, strict=True):
        score = direct["period"][m.id].score
        assert tile.value == ("\u2014" if score is None else f"{score * 100:.1f}%")
        assert tile.href == f"/quality/{m.id}?period={summary.period.label}"
        assert tile.status == m.status
        assert m.id in tile.label and m.target_text in tile.detail
        assert [v for _, v in tile.trend] == [
            pytest.approx(p.counts.rate * 100, abs=0.05)
            for p in m.trend
            if p.counts.rate is not None
        ]
    sections = report_sections(summary)
    assert [s.heading for s in sections][:1] == ["Quality measures"]
    tables = [b for s in sections for b in s.blocks if isinstance(b, Table)]
    main = tables[0]
    for row, m in zip(main.rows, summary.measures, strict=True):
        assert row[4:7] == [m.counts.numerator, m.counts.denominator, m.counts.exclusions]
        assert row[-1] == m.counts.gaps
    charts = [b for s in sections for b in s.blocks if isinstance(b, Chart)]
    assert charts and charts[0].spec["data"]["values"]
    by_department: dict[str, int] = defaultdict(int)
    for s in summary.measure("CMS130").strata_of("department"):
        by_department[s.label] += s.counts.denominator
    department = next(s for s in sections if s.heading == "Quality by department")
    rendered = render_html(Report("Quality", summary.period.label, _now(), sections))
    for label in by_department:
        assert label in rendered
    assert department.blocks


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
