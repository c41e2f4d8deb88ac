"""Cost of care: PMPM trend, service lines, departments and clinicians, CMS122
populations, and cost against outcome of each clinician's and department's patients.

Page: ``/cost`` (OVERSIGHT roles). The figures are
:func:`cmio.oversight.cost.cost_summary` (aggregates only: no patient appears), cached
per period under the key the executive overview shares.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.cost import CostSummary
from cmio.oversight.cost_report import (
    PANEL_COLUMNS,
    money,
    panel_rows,
    pmpm_trend_spec,
    scatter_spec,
    service_line_spec,
)
from cmio.oversight.period import ReportingPeriod
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import OVERSIGHT, NavItem

__all__ = ["TOP_CONDITIONS", "nav", "routes"]

nav = (NavItem("Cost", "/cost", "Oversight", OVERSIGHT),)

TOP_CONDITIONS = 15
"""Principal diagnoses listed (by allowed amount)."""


def routes(ctx: WebContext) -> list[Route]:
    """The cost page."""

    def summary(period: ReportingPeriod) -> CostSummary:
        result: CostSummary = ctx.area_summary("cost", period)
        return result

    ctx.cache.warm([("cost:warm", lambda: summary(ReportingPeriod.year_of(ctx.data_end())))])

    def index(request: Request) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        title = "Cost of care"
        try:
            period = ctx.period(request)
        except ValueError as exc:
            fallback = ReportingPeriod.year_of(ctx.data_end())
            return ctx.render(request, "cost/error.html", title=title, period=fallback,
                              error=str(exc), status=400)  # fmt: skip
        ready, data = ctx.area_lookup("cost", period)
        if not ready:
            return ctx.pending(request, title=title, what="the cost of care", period=period)
        conditions = sorted(data.conditions, key=lambda c: -c.allowed)[:TOP_CONDITIONS]
        clinician_panels = [p for p in data.clinician_panels if p.pmpm is not None]
        department_panels = [p for p in data.department_panels if p.pmpm is not None]
        return ctx.render(
            request, "cost/index.html", title=title, period=period, s=data, money=money,
            conditions=conditions,
            trend=pmpm_trend_spec(data),
            lines=service_line_spec(data.service_lines),
            departments_chart=service_line_spec(data.departments),
            clinician_scatter=scatter_spec(clinician_panels, "clinician"),
            department_scatter=scatter_spec(department_panels, "department"),
            panel_columns=PANEL_COLUMNS,
            clinician_rows=panel_rows(data.clinician_panels),
            department_rows=panel_rows(data.department_panels),
        )  # fmt: skip

    return [Route("/cost", index)]
