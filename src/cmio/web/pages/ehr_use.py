"""Physician EHR use: the CMIO's view (distributions, outliers, departments, every
clinician) and each physician's own figures against their peers.

Pages: ``/ehr-use`` (OVERSIGHT roles), ``/ehr-use/clinicians/{practitioner_id}`` (OVERSIGHT
roles, and a clinician for their own Practitioner only), ``/ehr-use/me`` (a clinician:
redirects to their page through the grant's ``fhirUser``,
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#fhiruser). The
figures are :func:`cmio.oversight.ehr_use.ehr_use_summary`, cached per period under the
key the executive overview shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cmio.oversight.ehr_use import METRICS, EhrUseSummary
from cmio.oversight.ehr_use_report import (
    clinician_trend_spec,
    department_heatmap_spec,
    distribution_spec,
    trend_spec,
)
from cmio.oversight.period import ReportingPeriod
from cmio.web.context import Forbidden, Viewer, WebContext
from cmio.web.pages import OVERSIGHT, NavItem

__all__ = ["PAGE_SIZE", "nav", "routes"]

nav = (
    NavItem("EHR use", "/ehr-use", "Oversight", OVERSIGHT),
    NavItem("My EHR use", "/ehr-use/me", "Care", ("clinician",)),
)

PAGE_SIZE = 50
"""Clinicians per page of the CMIO view's table."""

_FLAG_CLASS = {"outlier": "bad", "high": "warn", "low": "warn"}


def _own_practitioner(viewer: Viewer) -> str | None:
    """The viewer's Practitioner id from their grant's fhirUser (None: not a Practitioner)."""
    ref = viewer.grant.fhir_user or ""
    kind, _, ident = ref.rpartition("/")
    return ident if kind.endswith("Practitioner") and ident else None


def _page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def routes(ctx: WebContext) -> list[Route]:
    """The EHR-use pages."""

    def summary(period: ReportingPeriod) -> EhrUseSummary:
        result: EhrUseSummary = ctx.area_summary("ehr-use", period)
        return result

    ctx.cache.warm([("ehr-use:warm", lambda: summary(ReportingPeriod.year_of(ctx.data_end())))])

    def with_period(
        request: Request, template: str, title: str, fill: Callable[[EhrUseSummary], dict[str, Any]]
    ) -> Response:
        try:
            period = ctx.period(request)
        except ValueError as exc:
            fallback = ReportingPeriod.year_of(ctx.data_end())
            return ctx.render(request, "ehr_use/error.html", title=title, period=fallback,
                              error=str(exc), status=400)  # fmt: skip
        ready, data = ctx.area_lookup("ehr-use", period)
        if not ready:
            return ctx.pending(request, title=title, what="EHR use", period=period)
        values = fill(data)
        return ctx.render(
            request, template, title=str(values.pop("title", title)), period=period, s=data,
            metrics=METRICS, flag_class=_FLAG_CLASS, **values,
        )  # fmt: skip

    def index(request: Request) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        page = _page_number(request)

        def fill(data: EhrUseSummary) -> dict[str, Any]:
            ordered = sorted(data.clinicians, key=lambda c: (c.scheduled_hours <= 0, c.label))
            pages = max(1, -(-len(ordered) // PAGE_SIZE))
            current = min(page, pages)
            shown = ordered[(current - 1) * PAGE_SIZE : current * PAGE_SIZE]
            return {
                "clinicians": shown, "page": current, "pages": pages,
                "trend": trend_spec(data.months),
                "hours": distribution_spec(data, "h"), "shares": distribution_spec(data, "share"),
                "heatmap": department_heatmap_spec(data),
                "flagged": [o for o in data.outliers if o.flag == "outlier"],
            }  # fmt: skip

        return with_period(request, "ehr_use/index.html", "Physician EHR use", fill)

    def clinician(request: Request) -> Response:
        viewer = Viewer.of(request)
        practitioner_id = str(request.path_params["practitioner_id"])
        if not viewer.has_role(*OVERSIGHT) and _own_practitioner(viewer) != practitioner_id:
            raise Forbidden("Physicians see their own EHR-use figures only.")

        def fill(data: EhrUseSummary) -> dict[str, Any]:
            me = data.clinician(practitioner_id)
            name = me.label if me is not None else f"Practitioner/{practitioner_id}"
            return {
                "title": f"EHR use: {name}", "me": me, "practitioner_id": practitioner_id,
                "compared": data.compared(practitioner_id) if me is not None else [],
                "months": data.clinician_months.get(practitioner_id, ()),
                "ehr_trend": clinician_trend_spec(data, practitioner_id, "ehr_time8"),
                "wow_trend": clinician_trend_spec(data, practitioner_id, "wow8"),
                "own": _own_practitioner(viewer) == practitioner_id,
                "overseer": viewer.has_role(*OVERSIGHT),
            }  # fmt: skip

        return with_period(request, "ehr_use/clinician.html", "EHR use: one physician", fill)

    def me(request: Request) -> Response:
        viewer = Viewer.of(request)
        own = _own_practitioner(viewer)
        query = request.url.query
        suffix = f"?{query}" if query else ""
        if own is not None:
            return RedirectResponse(f"/ehr-use/clinicians/{quote(own, safe='')}{suffix}", 303)
        if viewer.has_role(*OVERSIGHT):
            return RedirectResponse(f"/ehr-use{suffix}", 303)
        raise Forbidden(
            "Your account is not linked to a Practitioner, so it has no EHR-use figures."
        )

    return [
        Route("/ehr-use", index),
        Route("/ehr-use/me", me),
        Route("/ehr-use/clinicians/{practitioner_id}", clinician),
    ]
