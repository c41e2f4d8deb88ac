"""How cost of care is shown: Vega-Lite charts (shared by the web pages and the
steering-committee report), overview tiles and report sections
(https://vega.github.io/vega-lite/docs/spec.html)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.oversight.cost import CostLine, CostSummary, Panel
from cmio.oversight.headline import Headline
from cmio.reports.model import Block, Chart, Metric, MetricRow, Paragraph, Section, Table

__all__ = [
    "cost_headlines",
    "cost_sections",
    "money",
    "panel_rows",
    "pmpm_trend_spec",
    "scatter_spec",
    "service_line_spec",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_POOR = "CMS122 poor control (> 9%)"
_CONTROLLED = "CMS122 controlled (<= 9%)"


def money(value: float | None, digits: int = 2) -> str:
    """``$1,234.56``; an em dash for no value."""
    return "\u2014" if value is None else f"${value:,.{digits}f}"


def pmpm_trend_spec(summary: CostSummary) -> dict[str, Any]:
    """PMPM per month (bars) with claims in the tooltip."""
    values = [
        {"month": m.month, "pmpm": None if m.pmpm is None else round(m.pmpm, 2),
         "claims": m.claims, "member_months": m.member_months}
        for m in summary.months
    ]  # fmt: skip
    return {
        "$schema": SCHEMA, "width": "container", "height": 220,
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "color": "#0b5aa6"},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "month"},
            "y": {"field": "pmpm", "type": "quantitative", "title": "PMPM (USD)"},
            "tooltip": [{"field": "month"}, {"field": "pmpm", "format": "$,.2f"},
                        {"field": "claims"}, {"field": "member_months"}],
        },
    }  # fmt: skip


def service_line_spec(lines: Sequence[CostLine], title: str = "PMPM (USD)") -> dict[str, Any]:
    """Horizontal bars of PMPM per line (service lines, departments ...)."""
    values = [
        {"line": line.label, "pmpm": round(line.pmpm or 0.0, 2), "claims": line.claims}
        for line in lines
    ]
    return {
        "$schema": SCHEMA, "width": "container", "height": 28 * max(len(values), 1) + 30,
        "data": {"values": values},
        "mark": {"type": "bar", "color": "#0b5aa6"},
        "encoding": {
            "y": {"field": "line", "type": "nominal", "sort": "-x", "title": None,
                  "axis": {"labelLimit": 360}},
            "x": {"field": "pmpm", "type": "quantitative", "title": title},
            "tooltip": [{"field": "line"}, {"field": "pmpm", "format": "$,.2f"},
                        {"field": "claims"}],
        },
    }  # fmt: skip


def scatter_spec(panels: Sequence[Panel], what: str = "clinician") -> dict[str, Any]:
    """Cost (PMPM) against outcome (share of measure opportunities met), one dot per
    panel sized by its members."""
    values = [
        {what: p.label, "pmpm": round(p.pmpm, 2), "met": round(p.met_rate, 4),
         "members": p.members, "opportunities": p.opportunities}
        for p in panels
        if p.pmpm is not None and p.met_rate is not None
    ]  # fmt: skip
    return {
        "$schema": SCHEMA, "width": "container", "height": 300,
        "data": {"values": values},
        "mark": {"type": "circle", "opacity": 0.8, "color": "#12344f"},
        "encoding": {
            "x": {"field": "pmpm", "type": "quantitative", "title": "PMPM of attributed patients (USD)"},
            "y": {"field": "met", "type": "quantitative", "title": "measure opportunities met",
                  "axis": {"format": "%"}},
            "size": {"field": "members", "type": "quantitative", "title": "patients"},
            "tooltip": [{"field": what}, {"field": "pmpm", "format": "$,.2f"},
                        {"field": "met", "format": ".1%"}, {"field": "members"},
                        {"field": "opportunities"}],
        },
    }  # fmt: skip


def panel_rows(panels: Sequence[Panel]) -> list[list[str | int | float | None]]:
    """Table rows of panels: name, patients, member months, PMPM, opportunities, met %,
    CMS122 poor control."""
    rows: list[list[str | int | float | None]] = []
    for p in panels:
        met = "\u2014" if p.met_rate is None else f"{p.met_rate * 100:.1f}%"
        cms122 = (
            "\u2014" if p.cms122_rate is None
            else f"{p.cms122_poor}/{p.cms122_denominator} ({p.cms122_rate * 100:.0f}%)"
        )  # fmt: skip
        rows.append([p.label, p.members, p.member_months, money(p.pmpm), p.opportunities, met,
                     cms122])  # fmt: skip
    return rows


PANEL_COLUMNS = ["Name", "Patients", "Member months", "PMPM", "Opportunities", "Met", "CMS122 poor"]


def _population(summary: CostSummary, name: str) -> CostLine | None:
    return next((p for p in summary.populations if p.key == name), None)


def cost_headlines(summary: CostSummary) -> list[Headline]:
    """PMPM with its monthly trend; PMPM by service line; diabetics' PMPM by control."""
    href = f"/cost?period={summary.period.label}"
    trend = tuple((m.month, round(m.pmpm, 2)) for m in summary.months if m.pmpm is not None)
    out = [
        Headline(
            "cost",
            "Cost per member per month (allowed)",
            money(summary.pmpm),
            f"{money(summary.allowed, 0)} allowed · {summary.member_months:,} member months",
            "",
            href,
            trend,
        )
    ]
    if summary.service_lines:
        top = summary.service_lines[0]
        rest = " · ".join(f"{line.label} {money(line.pmpm)}" for line in summary.service_lines[1:4])
        out.append(
            Headline(
                "cost",
                f"PMPM by service line: {top.label} largest",
                money(top.pmpm),
                rest,
                "",
                f"{href}#service-lines",
            )
        )
    poor, controlled = _population(summary, _POOR), _population(summary, _CONTROLLED)
    if poor is not None or controlled is not None:
        out.append(
            Headline(
                "cost",
                "PMPM of diabetics in poor control (CMS122)",
                money(poor.pmpm if poor else None),
                f"controlled: {money(controlled.pmpm if controlled else None)}",
                "",
                f"{href}#populations",
            )
        )
    return out


def cost_sections(summary: CostSummary) -> list[Section]:
    """One report section: totals, PMPM trend, service lines, populations and cost
    against outcome by department."""
    blocks: list[Block] = [
        Paragraph(
            f"Allowed amounts of {summary.claims:,} adjudicated claims for {summary.patients:,} "
            f"patients; {summary.members:,} members with coverage "
            f"({summary.member_months:,} member months). Outcome: the share of quality-measure "
            f"opportunities met ({', '.join(m for m, _ in summary.measures)})."
        ),
        MetricRow([
            Metric("PMPM", money(summary.pmpm), "allowed per member month"),
            Metric("Allowed", money(summary.allowed, 0), f"billed {money(summary.billed, 0)}"),
            Metric("Paid", money(summary.paid, 0),
                   f"patient share {money(summary.patient_share, 0)}"),
        ]),
    ]  # fmt: skip
    if summary.months:
        blocks.append(
            Chart(pmpm_trend_spec(summary), "PMPM per month",
                  "a line of the cost per member per month for each month of the period")
        )  # fmt: skip
    blocks.append(
        Table(["Service line", "Claims", "Allowed", "PMPM", "Per encounter"],
              [[s.label, s.claims, money(s.allowed, 0), money(s.pmpm), money(s.per_encounter)]
               for s in summary.service_lines], "By service line (encounter class)")
    )  # fmt: skip
    blocks.append(
        Table(["Population", "Patients", "Allowed", "PMPM"],
              [[p.label, p.patients, money(p.allowed, 0), money(p.pmpm)]
               for p in summary.populations], "By CMS122 population")
    )  # fmt: skip
    panels = [p for p in summary.department_panels if p.pmpm is not None]
    if panels:
        blocks.append(
            Chart(scatter_spec(panels, "department"), "Cost against outcome by department",
                  "one dot per department: PMPM of its attributed patients across, share of "
                  "quality-measure opportunities met up; the table below has the numbers")
        )  # fmt: skip
    blocks.append(
        Table(PANEL_COLUMNS, panel_rows(summary.department_panels),
              "Cost and outcome of each department's attributed patients")
    )  # fmt: skip
    return [Section("Cost of care", blocks)]
