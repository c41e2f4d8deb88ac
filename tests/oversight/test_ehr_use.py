"""The EHR-use oversight summary: its figures are the EHR-use engine's own tables, order
and pajama time follow their documented rules on a hand-written clinic, distributions
and outliers match an independent computation, and the tiles and report section carry
the summary's numbers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from cmio.measures.ehr_use import Period, SqlEngine, compute_ehr_use
from cmio.oversight.ehr_use import (
    METRICS,
    EhrUseSummary,
    ehr_use_summary,
    headlines,
    report_sections,
)
from cmio.oversight.period import ReportingPeriod
from cmio.reports import Chart, Table
from tests.measures.test_ehr_use import _event, clinic

METRIC_KEYS = [m.key for m in METRICS]
ENGINE_METRICS = [k for k in METRIC_KEYS if k not in ("order_time8", "pajama_time8")]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 1e-9


def _clinic_plus() -> list[dict[str, Any]]:
    """The measures' clinic plus a Saturday and an early-morning event of clinician a."""
    extra = [
        _event("x1", "a", "10:00:00", "10:05:00", "chart-review", day="2026-03-07"),
        _event("x2", "a", "06:50:00", "06:55:00", "chart-review", day="2026-03-04"),
    ]
    return clinic() + extra


def test_order_and_pajama_time_on_the_clinic() -> None:
    """Clinician a (7,200 s scheduled): orders 120 s (the prescription slice); pajama
    time 720 s (Monday 21:00 inbox session) + 300 s (Saturday) + 300 s (06:50 on a
    Wednesday); the weekday daytime work does not count. Clinician b: 300 s at 18:00
    over 2,400 s scheduled."""
    summary = ehr_use_summary(_clinic_plus(), ReportingPeriod.parse("2026-03/2026-04"))
    a, b = summary.clinician("a"), summary.clinician("b")
    assert a is not None and b is not None
    assert a.scheduled_hours == pytest.approx(7200 / 3600)
    assert a.value("order_time8") == pytest.approx(8 * 120 / 7200)
    assert a.value("pajama_time8") == pytest.approx(8 * (720 + 300 + 300) / 7200)
    assert b.value("pajama_time8") == pytest.approx(8 * 300 / 2400)
    assert b.value("order_time8") == 0
    nurse = summary.clinician("n")
    assert nurse is not None and nurse.value("order_time8") is None  # no scheduled time
    assert a.label == "Practitioner/a"  # no Practitioner resource: the reference
    march = dict((r.key, r) for r in summary.clinician_months["a"])["2026-03"]
    assert march.value("pajama_time8") == pytest.approx(8 * 1320 / 6000)
    # pooled: a, b and c have scheduled time; the nurse's orders time is not pooled
    org = summary.organization
    scheduled = 7200 + 2400 + 1200
    assert org.scheduled_hours == pytest.approx(scheduled / 3600)
    assert org.value("order_time8") == pytest.approx(8 * 120 / scheduled)
    assert org.value("pajama_time8") == pytest.approx(8 * (1320 + 300) / scheduled)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportingPeriod]:
    """30 synthetic patients as NDJSON and the year of their care."""
    from cmio.synth import SynthConfig, generate

    folder = tmp_path_factory.mktemp("ehr-synth")
    generate(SynthConfig(30, folder, years=1.0, seed=11, workers=1), lambda n: None)
    starts = [
        json.loads(line).get("period", {}).get("start", "")
        for line in (folder / "Encounter.ndjson").read_text().splitlines()
    ]
    return folder, ReportingPeriod.parse(max(starts)[:4])


@pytest.fixture(scope="module")
def computed(synthetic: tuple[Path, ReportingPeriod]) -> tuple[EhrUseSummary, dict[str, Any]]:
    folder, period = synthetic
    summary = ehr_use_summary(folder, period)
    with SqlEngine("duckdb") as engine:
        tables = compute_ehr_use(folder, Period(period.start, period.end), engine=engine)
    return summary, {name: table.to_pylist() for name, table in tables.items()}


def test_figures_are_the_engine_tables(computed: tuple[EhrUseSummary, dict[str, Any]]) -> None:
    summary, tables = computed
    assert len(summary.clinicians) == len(tables["clinicians"]) > 5
    for row in tables["clinicians"]:
        mine = summary.clinician(str(row["user_id"]))
        assert mine is not None and mine.department == (row["department"] or "")
        assert mine.scheduled_hours == pytest.approx(row["sched_s"] / 3600)
        for key in ENGINE_METRICS:
            assert _close(mine.value(key), row[key]), (row["user_id"], key)
        assert (
            mine.value("pajama_time8") is None
            or mine.value("pajama_time8") <= (mine.value("ehr_time8") or 0) + 1e-9
        )
    departments = {d.key: d for d in summary.departments}
    for row in tables["departments"]:
        for key in ENGINE_METRICS:
            assert _close(departments[row["department_id"] or ""].value(key), row[key])
    assert [m.key for m in summary.months] == [r["month"] for r in tables["months"]]
    for mine, row in zip(summary.months, tables["months"], strict=True):
        for key in ENGINE_METRICS:
            assert _close(mine.value(key), row[key])
    for row in tables["clinician_month"]:
        months = {m.key: m for m in summary.clinician_months[str(row["user_id"])]}
        assert _close(months[row["month"]].value("ehr_time8"), row["ehr_time8"])
    # the organization pools the months: scheduled time adds up
    assert summary.organization.scheduled_hours == pytest.approx(
        sum(r["sched_s"] for r in tables["months"]) / 3600
    )


def _tukey(values: list[float], higher_is_worse: bool) -> tuple[float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    if higher_is_worse:
        return q3 + 1.5 * (q3 - q1), deciles[-1]
    return q1 - 1.5 * (q3 - q1), deciles[0]


def test_distributions_and_outliers_recomputed(
    computed: tuple[EhrUseSummary, dict[str, Any]],
) -> None:
    summary, tables = computed
    scheduled = [r for r in tables["clinicians"] if (r["sched_s"] or 0) > 0]
    expected: set[tuple[str, str, str]] = set()
    for metric in METRICS:
        values = sorted(v for c in summary.measured if (v := c.value(metric.key)) is not None)
        dist = summary.distributions[metric.key]
        assert dist.count == len(values)
        if metric.key in ENGINE_METRICS:
            assert dist.count == sum(1 for r in scheduled if r[metric.key] is not None)
        if len(values) < 4:
            continue
        assert dist.median == pytest.approx(statistics.median(values))
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        assert (dist.q1, dist.q3) == (pytest.approx(q1), pytest.approx(q3))
        fence, decile = _tukey(values, metric.higher_is_worse)
        for c in summary.measured:
            v = c.value(metric.key)
            if v is None:
                continue
            worse = v > fence if metric.higher_is_worse else v < fence
            past = v > decile if metric.higher_is_worse else v < decile
            if worse:
                expected.add((c.key, metric.key, "outlier"))
            elif past:
                expected.add((c.key, metric.key, "high" if metric.higher_is_worse else "low"))
    found = {(o.practitioner_id, o.metric.key, o.flag) for o in summary.outliers}
    assert found == expected and found


def test_a_clinician_against_peers(computed: tuple[EhrUseSummary, dict[str, Any]]) -> None:
    summary, tables = computed
    me = summary.measured[0]
    by_metric = {p.metric.key: p for p in summary.compared(me.key)}
    assert list(by_metric) == METRIC_KEYS
    for metric in METRICS:
        values = [v for c in summary.measured if (v := c.value(metric.key)) is not None]
        figure = by_metric[metric.key]
        assert figure.value == me.value(metric.key)
        if figure.value is None:
            continue
        below = sum(1 for v in values if v < figure.value)
        assert figure.percentile_rank == pytest.approx(below / (len(values) - 1))
        assert figure.peer_median == pytest.approx(statistics.median(values))
    peers = [r for r in tables["peers"] if r["user_id"] == me.key and r["metric"] == "ehr_time8"]
    if peers:
        assert by_metric["ehr_time8"].specialty_median == pytest.approx(peers[0]["p50"])
    assert summary.compared("no-such-clinician")[0].value is None


def test_headlines_and_report_section(computed: tuple[EhrUseSummary, dict[str, Any]]) -> None:
    summary, tables = computed
    tiles = headlines(summary)
    assert [t.area for t in tiles] == ["ehr-use"] * 4
    ehr = tiles[0]
    assert ehr.value == f"{summary.organization.value('ehr_time8'):.2f} h"
    assert ehr.href == f"/ehr-use?period={summary.period.label}"
    assert [p for p, _ in ehr.trend] == [r["month"] for r in tables["months"]]
    assert ehr.trend[0][1] == pytest.approx(tables["months"][0]["ehr_time8"], abs=1e-3)
    outliers = {o.practitioner_id for o in summary.outliers if o.flag == "outlier"}
    assert tiles[-1].value == str(len(outliers))
    (section,) = report_sections(summary)
    assert section.heading == "Physician EHR use"
    tables_ = [b for b in section.blocks if isinstance(b, Table)]
    departments = {str(row[0]): row for row in tables_[0].rows}
    for dept in summary.departments:
        if dept.scheduled_hours > 0:
            assert departments[dept.label][2] == pytest.approx(dept.value("ehr_time8"), abs=0.01)
    assert any(isinstance(b, Chart) for b in section.blocks)
