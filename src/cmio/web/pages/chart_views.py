"""The chart's pictures: Vega-Lite v5 specs (https://vega.github.io/vega-lite/docs/) for
the encounter timeline, HbA1c and blood pressure trends, and small inline SVG sparklines
for the other results (each with its numbers in a table beside it)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from cmio.web.pages.chart_data import Chart
from cmio.web.pages.chart_results import Series

__all__ = ["a1c_spec", "bp_spec", "chart_specs", "sparkline", "timeline_spec"]

_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_KINDS = ["#0b5aa6", "#1c6b3a", "#8a5300", "#a3262a", "#5b3a8c", "#4a5868"]


def timeline_spec(chart: Chart) -> dict[str, Any] | None:
    """Encounters over time, one row per encounter class (None: no encounters)."""
    values = [
        {"date": v.start[:10], "class": v.kind or "other", "type": v.type, "reason": v.reason}
        for v in chart.encounters
        if v.start
    ]
    if not values:
        return None
    kinds = sorted({v["class"] for v in values})
    return {
        "$schema": _SCHEMA,
        "width": "container",
        "height": 40 + 28 * len(kinds),
        "data": {"values": values},
        "mark": {"type": "tick", "thickness": 3, "size": 20},
        "encoding": {
            "x": {"field": "date", "type": "temporal", "title": None},
            "y": {"field": "class", "type": "nominal", "title": None},
            "color": {
                "field": "class",
                "type": "nominal",
                "legend": None,
                "scale": {"domain": kinds, "range": _KINDS[: len(kinds)] or _KINDS[:1]},
            },
            "tooltip": [
                {"field": "date", "type": "temporal", "title": "date"},
                {"field": "class", "title": "class"},
                {"field": "type", "title": "type"},
                {"field": "reason", "title": "reason"},
            ],
        },
    }


def a1c_spec(series: Series | None) -> dict[str, Any] | None:
    """The HbA1c results over time (None: no numeric result)."""
    values = [
        {"date": p.when[:10], "value": p.value}
        for p in (series.points if series else ())
        if p.value is not None
    ]
    if not values:
        return None
    unit = series.unit if series else "%"
    return {
        "$schema": _SCHEMA,
        "width": "container",
        "height": 200,
        "data": {"values": values},
        "mark": {"type": "line", "point": True, "color": "#0b5aa6"},
        "encoding": {
            "x": {"field": "date", "type": "temporal", "title": None},
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": f"HbA1c ({unit})",
                "scale": {"zero": False},
            },
            "tooltip": [
                {"field": "date", "type": "temporal", "title": "date"},
                {"field": "value", "title": f"HbA1c ({unit})"},
            ],
        },
    }


def bp_spec(chart: Chart) -> dict[str, Any] | None:
    """Systolic and diastolic blood pressure over time (None: no readings)."""
    values = []
    for reading in chart.blood_pressure:
        for name, value in (("systolic", reading.systolic), ("diastolic", reading.diastolic)):
            if value is not None:
                values.append({"date": reading.when[:10], "series": name, "value": value})
    if not values:
        return None
    return {
        "$schema": _SCHEMA,
        "width": "container",
        "height": 200,
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "date", "type": "temporal", "title": None},
            "y": {
                "field": "value",
                "type": "quantitative",
                "title": "mm[Hg]",
                "scale": {"zero": False},
            },
            "color": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["systolic", "diastolic"], "range": ["#a3262a", "#0b5aa6"]},
            },
            "tooltip": [
                {"field": "date", "type": "temporal", "title": "date"},
                {"field": "series", "title": "component"},
                {"field": "value", "title": "mm[Hg]"},
            ],
        },
    }


def chart_specs(chart: Chart) -> dict[str, dict[str, Any] | None]:
    """The chart page's Vega-Lite specs by name (None: nothing to draw)."""
    return {"timeline": timeline_spec(chart), "a1c": a1c_spec(chart.a1c), "bp": bp_spec(chart)}


def sparkline(series: Series, width: int = 96, height: int = 22) -> Markup:
    """A small inline SVG of a result's numeric trend (empty for fewer than two numbers);
    its accessible name lists the first and last values."""
    values = series.values
    if len(values) < 2:
        return Markup("")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 4) / (len(values) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    label = f"trend of {len(values)} results, from {values[0]:g} to {values[-1]:g}"
    return Markup(
        "<svg class='chart-spark' width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img' "
        "aria-label='{label}'><polyline fill='none' stroke='#0b5aa6' stroke-width='1.5' "
        "points='{points}'/></svg>"
    ).format(w=width, h=height, label=escape(label), points=points)
