"""Data quality (issue 12, item 7): the data-quality score (standards adherence: labs in
LOINC, problems in SNOMED CT or ICD-10-CM, medications in RxNorm, units in UCUM, required
elements such as identifiers present, codes valid), by resource type and source system,
and the worst-kept standards (:mod:`cmio.oversight.data_quality`).

The summary is computed by the adherence measures over the whole store (seconds), cached
under ``data-quality:<period>`` (shared with the executive overview).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.data_quality import DataQualitySummary, headlines
from cmio.oversight.period import ReportingPeriod
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import WORKBENCH, NavItem

__all__ = ["ROLES", "nav", "routes"]

ROLES = (*WORKBENCH, "analyst")
"""The informatics team and the analysts."""

nav = (NavItem("Data quality", "/workbench/data-quality", "Workbench", ROLES),)


def summary_of(ctx: WebContext, period: ReportingPeriod) -> DataQualitySummary:
    """The period's summary, cached (key shared with the executive overview)."""
    result: DataQualitySummary = ctx.area_summary("data-quality", period)
    return result


def _chart(summary: DataQualitySummary) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": "container",
        "height": 200,
        "data": {
            "values": [
                {"type": r.key, "score": round(r.score, 1)}
                for r in summary.by_type
                if r.score is not None
            ]
        },
        "mark": "bar",
        "encoding": {
            "y": {"field": "type", "type": "nominal", "title": "Resource type", "sort": "x"},
            "x": {"field": "score", "type": "quantitative", "title": "Score",
                  "scale": {"domain": [0, 100]}},
        },
    }  # fmt: skip


def _trend(summary: DataQualitySummary) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": "container",
        "height": 160,
        "data": {
            "values": [
                {"month": m, "share": round(ok / n, 4)} for m, n, ok in summary.trend if n
            ]
        },
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "month", "type": "ordinal", "title": "Month"},
            "y": {"field": "share", "type": "quantitative", "title": "Standard coding",
                  "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
        },
    }  # fmt: skip


def page(ctx: WebContext, request: Request) -> Response:
    """The score, by type and source, and the worst checks."""
    Viewer.of(request).require(*ROLES)
    try:
        period = ctx.period(request)
    except ValueError as error:
        return ctx.render(
            request, "error.html", title="Data quality", message=str(error), status=400
        )
    ready, summary = ctx.area_lookup("data-quality", period)
    if not ready:
        return ctx.pending(request, title="Data quality", what="data quality", period=period)
    return ctx.render(
        request,
        "workbench/data_quality.html",
        title="Data quality",
        period=period,
        summary=summary,
        tiles=headlines(summary),
        worst=[c for c in summary.checks if c.failing][:20],
        spec=_chart(summary),
        trend_spec=_trend(summary),
    )


def routes(ctx: WebContext) -> list[Route]:
    """The page's route."""

    def handler(request: Request) -> Response:
        return page(ctx, request)

    return [Route("/workbench/data-quality", handler)]
