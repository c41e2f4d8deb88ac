"""Charts and report sections of the quality summary (:mod:`cmio.oversight.quality`).

The Vega-Lite v5 specs (https://vega.github.io/vega-lite/docs/spec.html) carry their data
inline so that the web pages and the steering-committee report (:mod:`cmio.reports`)
draw the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.oversight.quality import (
    EQUITY_STRATIFIERS,
    STRATIFIER_LABELS,
    MeasureQuality,
    QualitySummary,
    Stratum,
    delta_text,
)
from cmio.reports.model import Cell, Chart, Metric, MetricRow, Paragraph, Section, Table

__all__ = ["quality_sections", "strata_spec", "trend_spec"]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_PALETTE = ["#0b5aa6", "#a3262a", "#1c6b3a", "#8a5300", "#5b3a8c", "#12344f"]


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def trend_spec(measures: Sequence[MeasureQuality], *, width: Any = "container") -> dict[str, Any]:
    """A line per measure: the cumulative rate (%) at each month's end; a dashed rule
    per measure at its target when one measure is drawn."""
    values = [
        {
            "measure": m.id,
            "month": p.month,
            "rate": _rate(p.counts.rate),
            "numerator": p.counts.numerator,
            "denominator": p.counts.denominator,
        }
        for m in measures
        for p in m.trend
        if p.counts.rate is not None
    ]
    line: dict[str, Any] = {
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "month (period to date)"},
            "y": {
                "field": "rate",
                "type": "quantitative",
                "title": "rate (%)",
                "scale": {"domain": [0, 100]},
            },
            "color": {
                "field": "measure",
                "type": "nominal",
                "title": "measure",
                "scale": {"range": _PALETTE},
            },
            "tooltip": [
                {"field": "measure"},
                {"field": "month"},
                {"field": "rate", "title": "rate (%)"},
                {"field": "numerator"},
                {"field": "denominator"},
            ],
        },
    }
    layers: list[dict[str, Any]] = [line]
    if len(measures) == 1:
        layers.append(
            {
                "data": {"values": [{"target": round(measures[0].target * 100, 1)}]},
                "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#4a5868"},
                "encoding": {"y": {"field": "target", "type": "quantitative"}},
            }
        )
    return {
        "$schema": _SCHEMA,
        "width": width,
        "height": 240,
        "data": {"values": values},
        "layer": layers,
    }


def strata_spec(strata: Sequence[Stratum], *, width: Any = "container") -> dict[str, Any]:
    """Horizontal bars: the rate (%) per stratum, with the counts in the tooltip."""
    values = [
        {
            "stratum": s.label,
            "rate": _rate(s.counts.rate),
            "numerator": s.counts.numerator,
            "denominator": s.counts.denominator,
        }
        for s in strata
        if s.counts.rate is not None
    ]
    return {
        "$schema": _SCHEMA,
        "width": width,
        "height": {"step": 22},
        "data": {"values": values},
        "mark": {"type": "bar", "color": "#0b5aa6"},
        "encoding": {
            "y": {"field": "stratum", "type": "nominal", "sort": "-x", "title": None},
            "x": {
                "field": "rate",
                "type": "quantitative",
                "title": "rate (%)",
                "scale": {"domain": [0, 100]},
            },
            "tooltip": [
                {"field": "stratum"},
                {"field": "rate", "title": "rate (%)"},
                {"field": "numerator"},
                {"field": "denominator"},
            ],
        },
    }


def _pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{value * 100:.1f}%"


def quality_sections(summary: QualitySummary) -> list[Section]:
    """The steering-committee report's quality sections: rates against targets (tiles,
    a table and the trend chart), then rates by department and by equity strata."""
    label = summary.period.label
    metrics = [
        Metric(
            f"{m.id}{' (inverse)' if m.inverse else ''}",
            _pct(m.rate),
            f"{m.target_text} \u00b7 {delta_text(m, summary.previous)}",
        )
        for m in summary.measures
    ]
    rows: list[list[Cell]] = [
        [
            f"{m.identifier} {m.title}",
            _pct(m.rate),
            m.target_text.removeprefix("target "),
            m.status or "\u2014",
            m.counts.numerator,
            m.counts.denominator,
            m.counts.exclusions,
            _pct(m.previous.rate if m.previous else None),
            m.counts.gaps,
        ]
        for m in summary.measures
    ]
    blocks: list[Any] = [
        Paragraph(
            f"Quality measure rates for {label} against the organization's targets; "
            f"the previous period is {summary.previous.label}. An inverse measure (CMS122, "
            "poor glycemic control) is better when lower."
        ),
        MetricRow(metrics),
        Table(
            [
                "Measure",
                "Rate",
                "Target",
                "Status",
                "Numerator",
                "Denominator",
                "Exclusions",
                f"Rate {summary.previous.label}",
                "Open gaps",
            ],
            rows,
            caption=f"Quality measures, {label}",
        ),
    ]
    if any(m.trend for m in summary.measures):
        blocks.append(
            Chart(
                trend_spec(summary.measures, width=520),
                f"Quality measure rates, {label} (period to date)",
                "One line per measure: the rate from the start of the period to the end of "
                "each month; the table above has the period's figures.",
            )
        )
    sections = [Section("Quality measures", blocks)]
    for heading, stratifiers in (
        ("Quality by department", ("department",)),
        ("Quality by equity strata", EQUITY_STRATIFIERS),
    ):
        table = _strata_table(summary, stratifiers)
        if table.rows:
            sections.append(Section(heading, [table]))
    return sections


def _strata_table(summary: QualitySummary, stratifiers: Sequence[str]) -> Table:
    """Rows: stratum; columns: each measure's rate (numerator/denominator)."""
    keys: dict[tuple[str, str], str] = {}
    cells: dict[tuple[str, str, str], str] = {}
    for m in summary.measures:
        for stratifier in stratifiers:
            for s in m.strata_of(stratifier):
                keys.setdefault((stratifier, s.value), s.label)
                figure = f"{_pct(s.counts.rate)} ({s.counts.numerator}/{s.counts.denominator})"
                cells[(stratifier, s.value, m.id)] = figure
    rows: list[list[Cell]] = []
    for (stratifier, value), text in sorted(keys.items()):
        row: list[Cell] = [STRATIFIER_LABELS.get(stratifier, stratifier), text]
        row += [cells.get((stratifier, value, m.id), "\u2014") for m in summary.measures]
        rows.append(row)
    return Table(
        ["Stratifier", "Stratum", *[m.id for m in summary.measures]],
        rows,
        caption="Rate (numerator/denominator) per stratum",
    )
