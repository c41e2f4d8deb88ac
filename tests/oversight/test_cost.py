"""The cost oversight summary: totals, trend and breakdowns are the cost engine's own
tables, service lines add up, CMS122 populations match the engine's CMS122 membership,
panels' outcomes match the measure framework's strata, and the tiles and report section
carry the summary's numbers."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from cmio.measures.cost import cms122_populations, cost_of_care, read_cost
from cmio.measures.definition import builtin_measures
from cmio.measures.ehr_use import Period, SqlEngine
from cmio.measures.runner import evaluate_measures
from cmio.measures.sql import Period as MeasurePeriod
from cmio.oversight.cost import CostSummary, cost_summary, headlines, report_sections
from cmio.oversight.period import ReportingPeriod
from cmio.reports import Chart, Table

Computed = tuple[CostSummary, dict[str, list[dict[str, Any]]], ReportingPeriod, Path]


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> Computed:
    """25 synthetic patients (NDJSON), the summary of the year of their care, and the
    cost engine's tables with the engine's own CMS122 membership."""
    from cmio.synth import SynthConfig, generate

    folder = tmp_path_factory.mktemp("cost-synth")
    generate(SynthConfig(25, folder, years=1.0, seed=5, workers=1), lambda n: None)
    starts = [
        json.loads(line).get("period", {}).get("start", "")
        for line in (folder / "Encounter.ndjson").read_text().splitlines()
    ]
    period = ReportingPeriod.parse(max(starts)[:4])
    summary = cost_summary(folder, period)
    span = Period(period.start, period.end)
    with SqlEngine("duckdb") as engine:
        tables = cost_of_care(
            read_cost(folder), span, engine, populations=cms122_populations(folder, span)
        )
    return summary, {k: v.to_pylist() for k, v in tables.items()}, period, folder


def test_totals_trend_and_breakdowns_are_the_engine_tables(computed: Computed) -> None:
    summary, tables, _, _ = computed
    total = tables["totals"][0]
    assert summary.claims == total["claims"] > 0
    assert summary.allowed == pytest.approx(total["allowed_cents"] / 100)
    assert summary.member_months == total["member_months"]
    assert summary.pmpm == pytest.approx(total["pmpm"])
    assert [(m.month, m.claims) for m in summary.months] == [
        (r["month"], r["claims"]) for r in tables["months"]
    ]
    for mine, row in zip(summary.months, tables["months"], strict=True):
        assert mine.pmpm == pytest.approx(row["pmpm"])
    departments = {d.key: d for d in summary.departments}
    for row in tables["departments"]:
        mine = departments[row["department_id"] or ""]
        assert mine.allowed == pytest.approx(row["allowed_cents"] / 100)
        assert mine.claims == row["claims"]
    clinicians = {c.key: c for c in summary.clinicians}
    for row in tables["clinicians"]:
        assert clinicians[row["clinician_id"] or ""].allowed == pytest.approx(
            row["allowed_cents"] / 100
        )
    # service lines: the encounter types summed per class; they add up to the total PMPM
    by_class: dict[str, int] = defaultdict(int)
    for row in tables["encounter_types"]:
        by_class[row["class_code"] or ""] += row["allowed_cents"]
    assert {s.key: round(s.allowed * 100) for s in summary.service_lines} == dict(by_class)
    assert sum(s.pmpm or 0 for s in summary.service_lines) == pytest.approx(summary.pmpm or 0)


def test_cms122_populations_match_the_engine(computed: Computed) -> None:
    summary, tables, _, _ = computed
    names = {
        "CMS122 numerator (poor control)": "CMS122 poor control (> 9%)",
        "CMS122 denominator (controlled)": "CMS122 controlled (<= 9%)",
    }
    engine = {names.get(r["population"], r["population"]): r for r in tables["populations"]}
    mine = {p.key: p for p in summary.populations}
    assert set(mine) == set(engine)
    for key, row in engine.items():
        assert mine[key].patients == row["patients"]
        assert mine[key].pmpm == pytest.approx(row["pmpm"])


def test_panels_against_the_measure_strata(computed: Computed) -> None:
    summary, _, period, folder = computed
    results = evaluate_measures(
        list(builtin_measures().values()), MeasurePeriod(period.start, period.end), folder
    )
    opportunities: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for result in results:
        counts = result.strata.to_pylist()
        for row in counts:
            if row["stratifier"] != "clinician":
                continue
            den = row["denominator"] - row.get("denominator_exclusion", 0)
            eligible = den - (row.get("denominator_exception") or 0)
            met = den - row["numerator"] if result.measure.id == "CMS122" else row["numerator"]
            acc = opportunities[row["stratum"]]
            acc[0] += eligible
            acc[1] += met
            if result.measure.id == "CMS122":
                acc[2] += den
                acc[3] += row["numerator"]
    panels = {p.key: p for p in summary.clinician_panels}
    for clinician, (eligible, met, den, poor) in opportunities.items():
        if clinician in panels:
            p = panels[clinician]
            assert (p.opportunities, p.met, p.cms122_denominator, p.cms122_poor) == (
                eligible, met, den, poor,
            )  # fmt: skip
        else:
            assert eligible == 0
    # every patient with cost belongs to at most one panel: panel costs add up
    assert sum(p.allowed for p in summary.clinician_panels) <= summary.allowed + 1e-6
    assert sum(p.members for p in summary.clinician_panels) <= summary.members
    assert sum(p.allowed for p in summary.department_panels) <= summary.allowed + 1e-6
    for p in summary.clinician_panels:
        if p.member_months:
            assert p.pmpm == pytest.approx(p.allowed / p.member_months)


def test_headlines_and_report_section(computed: Computed) -> None:
    summary, _, period, _ = computed
    pmpm, lines, *_rest = headlines(summary)
    assert pmpm.value == f"${summary.pmpm:,.2f}" and pmpm.area == "cost"
    assert pmpm.href == f"/cost?period={period.label}"
    assert [m for m, _ in pmpm.trend] == [m.month for m in summary.months if m.pmpm is not None]
    assert lines.value == f"${summary.service_lines[0].pmpm:,.2f}"
    (section,) = report_sections(summary)
    assert section.heading == "Cost of care"
    tables = [b for b in section.blocks if isinstance(b, Table)]
    assert [str(r[0]) for r in tables[0].rows] == [s.label for s in summary.service_lines]
    assert any(isinstance(b, Chart) for b in section.blocks)
