"""How physician EHR use is shown: Vega-Lite charts (shared by the web pages and the
steering-committee report), overview tiles and report sections.

Charts are Vega-Lite v5 specifications with inline data
(https://vega.github.io/vega-lite/docs/spec.html); box plots use Tukey whiskers
(``extent: 1.5``, https://vega.github.io/vega-lite/docs/boxplot.html), the fences of the
outlier rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.oversight.ehr_use import METRICS, EhrUseSummary, MetricInfo, UseFigures
from cmio.oversight.headline import Headline
from cmio.reports.model import Block, Chart, Metric, MetricRow, Paragraph, Section, Table

__all__ = [
    "HEADLINE_METRICS",
    "clinician_trend_spec",
    "department_heatmap_spec",
    "distribution_spec",
    "ehr_use_headlines",
    "ehr_use_sections",
    "metric",
    "trend_spec",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
HEADLINE_METRICS = ("ehr_time8", "wow8", "inbox_time8")
"""The figures of the executive overview."""
TREND_METRICS = ("ehr_time8", "wow8", "pajama_time8", "inbox_time8")
_PALETTE = ["#0b5aa6", "#a3262a", "#1c6b3a", "#8a5300", "#5b3f8c", "#4a5868"]


def metric(key: str) -> MetricInfo:
    """The :class:`MetricInfo` of a key.

    Raises:
        KeyError: not an EHR-use figure.
    """
    for info in METRICS:
        if info.key == key:
            return info
    raise KeyError(key)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def trend_spec(
    rows: Sequence[UseFigures], metrics: Sequence[str] = TREND_METRICS
) -> dict[str, Any]:
    """Monthly lines of the hour figures (one line per figure)."""
    values = [
        {"month": r.key, "metric": metric(m).label, "hours": _round(r.value(m))}
        for r in rows
        for m in metrics
        if r.value(m) is not None
    ]
    return {
        "$schema": SCHEMA, "width": "container", "height": 240,
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "month"},
            "y": {"field": "hours", "type": "quantitative", "title": "hours per 8 h scheduled"},
            "color": {"field": "metric", "type": "nominal", "title": None,
                      "scale": {"range": _PALETTE}},
            "tooltip": [{"field": "month"}, {"field": "metric"},
                        {"field": "hours", "format": ".2f"}],
        },
    }  # fmt: skip


def distribution_spec(summary: EhrUseSummary, unit: str = "h") -> dict[str, Any]:
    """Box plot (Tukey whiskers) with each clinician as a dot, one row per figure of
    ``unit`` (``h`` or ``share``)."""
    chosen = [m for m in METRICS if m.unit == unit]
    values = [
        {"metric": m.label, "value": _round(v), "clinician": c.label}
        for c in summary.measured
        for m in chosen
        if (v := c.value(m.key)) is not None
    ]
    title = "hours per 8 h scheduled" if unit == "h" else "share"
    axis = {"format": "%"} if unit == "share" else {}
    order = [m.label for m in chosen]
    y = {"field": "metric", "type": "nominal", "title": None, "sort": order}
    x = {"field": "value", "type": "quantitative", "title": title, "axis": axis}
    return {
        "$schema": SCHEMA, "width": "container", "height": 42 * len(chosen) + 30,
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "boxplot", "extent": 1.5, "color": "#9db8d6", "outliers": False},
             "encoding": {"x": x, "y": y}},
            {"mark": {"type": "circle", "size": 40, "opacity": 0.8, "color": "#12344f"},
             "encoding": {"x": x, "y": y, "yOffset": {"field": "clinician", "type": "nominal"},
                          "tooltip": [{"field": "clinician"}, {"field": "metric"},
                                      {"field": "value", "format": ".2f"}]}},
        ],
    }  # fmt: skip


def department_heatmap_spec(summary: EhrUseSummary, key: str = "ehr_time8") -> dict[str, Any]:
    """Department x month cells coloured by one figure."""
    names = {d.key: d.label for d in summary.departments}
    values = [
        {"department": names.get(dept, dept or "(no department)"), "month": r.key,
         "value": _round(r.value(key))}
        for dept, rows in summary.department_months.items()
        for r in rows
        if r.value(key) is not None
    ]  # fmt: skip
    return {
        "$schema": SCHEMA, "width": "container", "height": 24 * max(len(names), 1) + 40,
        "data": {"values": values},
        "mark": "rect",
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "month"},
            "y": {"field": "department", "type": "nominal", "title": None,
                  "axis": {"labelLimit": 360}},
            "color": {"field": "value", "type": "quantitative", "title": metric(key).label,
                      "scale": {"scheme": "blues"}},
            "tooltip": [{"field": "department"}, {"field": "month"},
                        {"field": "value", "format": ".2f"}],
        },
    }  # fmt: skip


def clinician_trend_spec(summary: EhrUseSummary, practitioner_id: str, key: str) -> dict[str, Any]:
    """One clinician's monthly figure beside the organization's."""
    values = [
        {"month": r.key, "who": "You", "value": _round(r.value(key))}
        for r in summary.clinician_months.get(practitioner_id, ())
        if r.value(key) is not None
    ] + [
        {"month": r.key, "who": "Organization", "value": _round(r.value(key))}
        for r in summary.months
        if r.value(key) is not None
    ]
    return {
        "$schema": SCHEMA, "width": "container", "height": 220,
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "month"},
            "y": {"field": "value", "type": "quantitative", "title": metric(key).label},
            "color": {"field": "who", "type": "nominal", "title": None,
                      "scale": {"domain": ["You", "Organization"], "range": _PALETTE[:2]}},
            "strokeDash": {"field": "who", "type": "nominal", "legend": None},
            "tooltip": [{"field": "month"}, {"field": "who"}, {"field": "value", "format": ".2f"}],
        },
    }  # fmt: skip


def ehr_use_headlines(summary: EhrUseSummary) -> list[Headline]:
    """EHR-Time8, WOW8 and Inbox-Time8 of the organization with their monthly trend, and
    the number of clinicians flagged as outliers."""
    href = f"/ehr-use?period={summary.period.label}"
    out: list[Headline] = []
    for key in HEADLINE_METRICS:
        info, dist = metric(key), summary.distributions[key]
        trend = tuple(
            (r.key, round(v, 3)) for r in summary.months if (v := r.value(key)) is not None
        )
        out.append(
            Headline(
                "ehr-use",
                f"{info.label}: {info.description}",
                info.format(summary.organization.value(key)),
                f"median clinician {info.format(dist.median)} · {dist.count} clinicians",
                "",
                href,
                trend,
            )
        )
    flagged = sorted({o.practitioner_id for o in summary.outliers if o.flag == "outlier"})
    out.append(
        Headline(
            "ehr-use",
            "Clinicians with an EHR-use outlier",
            str(len(flagged)),
            f"of {len(summary.measured)} with scheduled time (Tukey fences)",
            "warn" if flagged else "good",
            f"{href}#outliers",
        )
    )
    return out


def ehr_use_sections(summary: EhrUseSummary) -> list[Section]:
    """One report section: the headline figures, the monthly trend, departments and
    outliers."""
    org = summary.organization
    tiles = MetricRow(
        [Metric(m.label, m.format(org.value(m.key)), m.description) for m in METRICS[:6]]
    )
    dept = Table(
        ["Department", "Scheduled h", *(metric(k).label for k in TREND_METRICS)],
        [
            [d.label, round(d.scheduled_hours, 1),
             *(None if d.value(k) is None else round(d.value(k) or 0.0, 2) for k in TREND_METRICS)]
            for d in summary.departments
            if d.scheduled_hours > 0
        ],
        "By department (pooled, hours per 8 h scheduled)",
    )  # fmt: skip
    outliers = Table(
        ["Clinician", "Department", "Figure", "Value", "Rule"],
        [[o.name, o.department, o.metric.label, o.metric.format(o.value), o.rule]
         for o in summary.outliers if o.flag == "outlier"],
        "Outliers",
    )  # fmt: skip
    blocks: list[Block] = [
        Paragraph(
            f"{len(summary.measured)} clinicians with scheduled patient time "
            f"({org.scheduled_hours:,.0f} h scheduled, {org.ehr_hours:,.0f} h in the EHR). "
            f"Sessions end after {summary.timeout_s} s without activity; figures are hours "
            "per 8 hours of scheduled patient time (Sinsky et al., JAMIA 2020)."
        ),
        tiles,
    ]
    if summary.months:
        blocks.append(
            Chart(
                trend_spec(summary.months),
                "EHR use per month",
                "monthly lines of EHR-Time8, WOW8, pajama time and Inbox-Time8 for the "
                "organization, in hours per 8 hours of scheduled patient time",
            )
        )
    blocks += [dept, outliers]
    return [Section("Physician EHR use", blocks)]
