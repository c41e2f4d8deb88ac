"""Quality measures (issue 12, item 3): rates against targets, trends, stratification and
the care-gap patient lists.

Pages:

* ``/quality``: every measure as a tile (rate, target, status, change from the previous
  period), the trend chart and a table of the figures (OVERSIGHT roles and clinicians);
* ``/quality/{measure}``: one measure: its figures, the period-to-date trend, and the
  rates by clinician, department and the equity strata (sex, age band, race, ethnicity,
  payer) as tables and bar charts; links to the care-gap list for PATIENT_DATA roles;
* ``/quality/{measure}/gaps``: the patients with an open gap (in the denominator and
  missing the numerator; in the numerator of an inverse measure), paged, each linking to
  their chart (``/patients/{id}``). Patient rows are read through the FHIR API as the
  viewer (:meth:`WebContext.fhir`): a clinician sees only the patients they treat, and
  each read is authorized and audited like any API search.

The summary (:func:`cmio.oversight.quality.quality_summary`) is cached per period under
``quality:<period>``, the key the executive overview shares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.period import ReportingPeriod
from cmio.oversight.quality import (
    EQUITY_STRATIFIERS,
    STRATIFIER_LABELS,
    CareGap,
    MeasureQuality,
    QualitySummary,
)
from cmio.oversight.quality_report import strata_spec, trend_spec
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import OVERSIGHT, PATIENT_DATA, NavItem

__all__ = ["PAGE_SIZE", "GapRow", "cached_summary", "nav", "routes"]

log = logging.getLogger(__name__)

nav = (NavItem("Quality", "/quality", "Oversight", (*OVERSIGHT, "clinician")),)
VIEWERS = (*OVERSIGHT, "clinician")
PAGE_SIZE = 25
"""Patients per page of a care-gap list."""
_CHUNK = 200  # patient ids per FHIR search
_STATUS_WORDS = {"good": "on target", "warn": "near target", "bad": "off target"}


def cached_summary(ctx: WebContext, period: ReportingPeriod) -> QualitySummary:
    """The period's quality summary from the web app's cache (computed once per period;
    the executive overview uses the same key)."""

    result: QualitySummary = ctx.area_summary("quality", period)
    return result


@dataclass(frozen=True, slots=True)
class GapRow:
    """One patient of a care-gap list as the page shows it."""

    gap: CareGap
    name: str
    gender: str
    birth_date: str


def _name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
        if text.strip():
            return str(text).strip()
    return f"Patient/{patient.get('id')}"


def _age(birth: str, on: date) -> str:
    try:
        born = date.fromisoformat(birth[:10])
    except ValueError:
        return ""
    return str(on.year - born.year - ((on.month, on.day) < (born.month, born.day)))


class QualityPages:
    """The quality pages' handlers for one web app."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def _period(self, request: Request) -> tuple[ReportingPeriod, str]:
        try:
            return self.ctx.period(request), ""
        except ValueError as exc:
            return ReportingPeriod.year_of(self.ctx.data_end()), str(exc)

    def _measure(self, summary: QualitySummary, request: Request) -> MeasureQuality:
        try:
            return summary.measure(str(request.path_params["measure"]))
        except KeyError:
            raise HTTPException(404) from None

    def _error(self, request: Request, period: ReportingPeriod, error: str) -> Response:
        return self.ctx.render(
            request, "quality/error.html", title="Quality", period=period, error=error, status=400
        )

    def _pending(self, request: Request, title: str, period: ReportingPeriod) -> Response:
        return self.ctx.pending(request, title=title, what="the quality measures", period=period)

    def index(self, request: Request) -> Response:
        """``/quality``: every measure at a glance."""
        viewer = Viewer.of(request)
        viewer.require(*VIEWERS)
        period, error = self._period(request)
        if error:
            return self._error(request, period, error)
        ready, summary = self.ctx.area_lookup("quality", period)
        if not ready:
            return self._pending(request, "Quality", period)
        return self.ctx.render(
            request,
            "quality/index.html",
            title="Quality",
            period=period,
            s=summary,
            words=_STATUS_WORDS,
            trend=trend_spec(summary.measures),
            gaps_allowed=viewer.has_role(*PATIENT_DATA),
        )

    def measure(self, request: Request) -> Response:
        """``/quality/{measure}``: one measure's figures, trend and strata."""
        viewer = Viewer.of(request)
        viewer.require(*VIEWERS)
        period, error = self._period(request)
        if error:
            return self._error(request, period, error)
        ready, summary = self.ctx.area_lookup("quality", period)
        if not ready:
            return self._pending(request, str(request.path_params["measure"]).upper(), period)
        m = self._measure(summary, request)
        groups = [
            (name, STRATIFIER_LABELS[name], m.strata_of(name))
            for name in ("clinician", "department", *EQUITY_STRATIFIERS)
        ]
        return self.ctx.render(
            request,
            "quality/measure.html",
            title=f"{m.name} ({m.id})",
            period=period,
            s=summary,
            m=m,
            words=_STATUS_WORDS,
            trend=trend_spec([m]),
            strata_groups=[(n, label, st, strata_spec(st)) for n, label, st in groups],
            gaps_allowed=viewer.has_role(*PATIENT_DATA),
        )

    def gaps(self, request: Request) -> Response:
        """``/quality/{measure}/gaps``: the patients with an open gap the viewer may see."""
        viewer = Viewer.of(request)
        viewer.require(*PATIENT_DATA)
        period, error = self._period(request)
        if error:
            return self._error(request, period, error)
        ready, summary = self.ctx.area_lookup("quality", period)
        if not ready:
            return self._pending(request, "Care gaps", period)
        m = self._measure(summary, request)
        clinician = request.query_params.get("clinician", "")
        department = request.query_params.get("department", "")
        chosen = [
            g
            for g in m.gaps
            if (not clinician or g.clinician == clinician)
            and (not department or g.department == department)
        ]
        patients = self._visible(request, [g.patient_id for g in chosen])
        rows = [
            GapRow(
                g,
                _name(patients[g.patient_id]),
                str(patients[g.patient_id].get("gender") or ""),
                str(patients[g.patient_id].get("birthDate") or ""),
            )
            for g in chosen
            if g.patient_id in patients
        ]
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        page = min(page, pages)
        clinicians = sorted({(g.clinician_label, g.clinician) for g in m.gaps})
        departments = sorted({g.department for g in m.gaps})
        return self.ctx.render(
            request,
            "quality/gaps.html",
            title=f"Care gaps: {m.name} ({m.id})",
            period=period,
            m=m,
            rows=rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
            total=len(rows),
            hidden=len(chosen) - len(rows),
            page=page,
            pages=pages,
            clinician=clinician,
            department=department,
            clinicians=clinicians,
            departments=departments,
            age=lambda birth: _age(birth, period.end),
        )

    def _visible(self, request: Request, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The patients among ``ids`` the viewer may see, read through the FHIR API as the
        viewer (a search by ``_id``: the API narrows it to the viewer's patients)."""
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            bundle = self.ctx.fhir(
                request,
                "GET",
                "Patient",
                [
                    ("_id", ",".join(chunk)),
                    ("_count", str(len(chunk))),
                    ("_elements", "name,gender,birthDate"),
                ],
            )
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == "Patient" and resource.get("id"):
                    found[str(resource["id"])] = resource
        return found


def routes(ctx: WebContext) -> list[Route]:
    """The quality pages (see the module docstring)."""
    pages = QualityPages(ctx)
    return [
        Route("/quality", pages.index),
        Route("/quality/{measure}", pages.measure),
        Route("/quality/{measure}/gaps", pages.gaps),
    ]
