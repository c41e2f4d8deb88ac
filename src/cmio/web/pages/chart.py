"""The patient chart (issue 12, item 6): the EMR view a physician opens.

Pages:

* ``/patients``: find a patient (name, identifier, birth date), paged; a clinician also
  sees "my patients" (those of their recent encounters) (:mod:`cmio.web.pages.patients`);
* ``/patients/{id}``: demographics, problems, medications, allergies, immunizations,
  encounters (timeline and list), results with trends, notes; read as the viewer with one
  ``Patient/[id]/$everything`` (https://hl7.org/fhir/R4/patient-operation-everything.html),
  so it is authorized and audited like any API read;
* ``/patients/{id}/gaps`` and ``/patients/{id}/cds`` (loaded by htmx after the chart):
  the patient's open care gaps (:mod:`cmio.measures.caregaps`) and the cards of the
  active ``patient-view`` CDS services (https://cds-hooks.hl7.org/2.0/#patient-view);
* ``POST /patients/{id}/break-glass``: a clinician opening the chart of a patient they do
  not treat gives a reason; the chart's reads then carry ``X-Break-Glass`` (the API's
  break-the-glass access, recorded in the audit trail) for an hour
  (:class:`cmio.web.pages.chart_access.GlassAccess`).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cmio.web.context import POLL_DELAYS, FhirCallError, Viewer
from cmio.web.pages import PATIENT_DATA, NavItem
from cmio.web.pages.chart_access import GlassAccess
from cmio.web.pages.chart_data import build_chart
from cmio.web.pages.chart_views import chart_specs, sparkline

if TYPE_CHECKING:
    from cmio.web.context import WebContext

__all__ = ["CHART_TYPES", "ChartPages", "nav", "routes"]

nav = (NavItem("Patients", "/patients", "Care", PATIENT_DATA),)

CHART_TYPES = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Encounter",
    "Observation",
    "DocumentReference",
    "Communication",
)
"""The compartment types the chart reads (``$everything`` with ``_type``)."""
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_MAX_PAGES = 20


def routes(ctx: WebContext) -> list[Route]:
    """The chart's routes (see the module docstring)."""
    from cmio.web.pages.patients import PatientSearch

    pages = ChartPages(ctx)
    search = PatientSearch(ctx)
    for name in ("chart.html", "patients.html", "cds.html", "gaps.html", "break_glass.html"):
        ctx.templates.get_template(f"chart/{name}")  # compiled now, not in the first request
    return [
        Route("/patients", search.page),
        Route("/patients/{id}", pages.chart),
        Route("/patients/{id}/gaps", pages.gaps),
        Route("/patients/{id}/cds", pages.cds),
        Route("/patients/{id}/break-glass", pages.break_glass, methods=["POST"]),
    ]


class ChartPages:
    """The chart's handlers for one web app."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.glass = GlassAccess()
        self._hooks: Any = None

    @property
    def hooks(self) -> Any:
        """The server's CDS Hooks service (``ctx.cds``; one of our own when there is none),
        called in-process (:meth:`cmio.api.cds_hooks.CdsHooks.invoke`) with the viewer's
        grant."""
        from cmio.api.cds_hooks import CdsHooks

        if isinstance(self.ctx.cds, CdsHooks):
            return self.ctx.cds
        if self._hooks is None:
            self._hooks = CdsHooks(self.ctx.env, self.ctx.auth)
        return self._hooks

    # -- reading as the viewer --------------------------------------------------------

    def _patient_id(self, request: Request) -> str:
        pid = str(request.path_params["id"])
        if not _ID.fullmatch(pid):
            raise FhirCallError(404, {"issue": [{"diagnostics": f"No patient {pid!r}"}]})
        return pid

    def _headers(self, reason: str | None) -> dict[str, str]:
        return {"x-break-glass": reason} if reason else {}

    def everything(self, request: Request, pid: str, reason: str | None) -> list[dict[str, Any]]:
        """The patient's compartment and what it references, every page, as the viewer."""
        query = [("_count", "1000"), ("_type", ",".join(CHART_TYPES))]
        found: list[dict[str, Any]] = []
        for _ in range(_MAX_PAGES):
            path = f"Patient/{pid}/$everything"
            bundle = self.ctx.fhir(request, "GET", path, query, headers=self._headers(reason))
            found += [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
            following = [
                link["url"] for link in bundle.get("link", []) if link["relation"] == "next"
            ]
            if not following:
                break
            query = parse_qsl(urlsplit(following[0]).query)
        return found

    def _may_break_glass(self, viewer: Viewer) -> bool:
        """A relationship-bound role that may break the glass (a clinician)."""
        from cmio.security.roles import RoleTable

        table = RoleTable()
        roles = viewer.roles
        return bool(roles & table.relationship_roles) and bool(roles & table.break_glass_roles)

    def _refused(self, request: Request, pid: str, exc: FhirCallError) -> Response:
        viewer = Viewer.of(request)
        if exc.status in (403, 404) and self._may_break_glass(viewer):
            return self.ctx.render(
                request,
                "chart/break_glass.html",
                title="Not one of your patients",
                patient_id=pid,
                status=403,
            )
        raise exc

    def _authorize(self, request: Request, pid: str) -> str | None:
        """Read the Patient as the viewer (raises :class:`FhirCallError`); the reason of an
        active break-the-glass access."""
        Viewer.of(request).require(*PATIENT_DATA)
        reason = self.glass.reason(request, Viewer.of(request), pid)
        self.ctx.fhir(request, "GET", f"Patient/{pid}", headers=self._headers(reason))
        return reason

    # -- pages ------------------------------------------------------------------------

    def chart(self, request: Request) -> Response:
        """``/patients/{id}``: the chart."""
        viewer = Viewer.of(request)
        viewer.require(*PATIENT_DATA)
        pid = self._patient_id(request)
        reason = self.glass.reason(request, viewer, pid)
        started = time.perf_counter()
        try:
            resources = self.everything(request, pid, reason)
        except FhirCallError as exc:
            return self._refused(request, pid, exc)
        read_ms = (time.perf_counter() - started) * 1000
        chart = build_chart(resources, pid, date.today())
        built = time.perf_counter()
        response = self.ctx.render(
            request,
            "chart/chart.html",
            title=chart.patient.name,
            rec=chart,
            specs=chart_specs(chart),
            sparks={s.code: sparkline(s) for s in chart.results},
            glass_reason=reason,
            read_ms=read_ms,
            resource_count=len(resources),
            period_text=request.query_params.get("period", ""),
        )
        done = time.perf_counter()
        build_ms = (built - started) * 1000 - read_ms
        timing = f"fhir;dur={read_ms:.1f}, build;dur={build_ms:.1f}, "
        timing += f"total;dur={(done - started) * 1000:.1f}"
        response.headers["server-timing"] = f"{timing}, {response.headers['server-timing']}"
        return response

    def gaps(self, request: Request) -> Response:
        """``/patients/{id}/gaps``: the patient's open care gaps in the reporting period."""
        pid = self._patient_id(request)
        try:
            self._authorize(request, pid)
        except FhirCallError as exc:
            return self._refused(request, pid, exc)
        try:
            period = self.ctx.period(request)
        except ValueError as exc:
            return self.ctx.render(
                request, "error.html", title="Care gaps", message=str(exc), status=400
            )
        ready, summary = self.ctx.area_lookup("quality", period)
        if not ready and request.headers.get("hx-target") == "gaps":
            return self.ctx.render(
                request, "chart/gaps_pending.html", title="Care gaps", period=period,
                url=f"{request.url.path}?{request.url.query}", **_poll(request),
            )  # fmt: skip
        if not ready:
            return self.ctx.pending(
                request, title="Care gaps", what="the quality measures", period=period
            )
        rows = _gaps(summary, pid)
        return self.ctx.render(
            request, "chart/gaps.html", title="Care gaps", gaps=rows, period=period, patient_id=pid
        )

    def cds(self, request: Request) -> Response:
        """``/patients/{id}/cds``: the cards of the active ``patient-view`` services."""
        viewer = Viewer.of(request)
        pid = self._patient_id(request)
        try:
            reason = self._authorize(request, pid)
        except FhirCallError as exc:
            return self._refused(request, pid, exc)
        cards, problems = self.patient_view(request, viewer, pid, reason)
        return self.ctx.render(
            request,
            "chart/cds.html",
            title="Decision support",
            cards=cards,
            problems=problems,
            patient_id=pid,
        )

    def patient_view(
        self, request: Request, viewer: Viewer, pid: str, reason: str | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Call every active ``patient-view`` service in-process as the viewer: the cards
        (each with its ``service``) and the services that failed (with why)."""
        from cmio.cds import active_services

        grant = None if viewer.unrestricted else viewer.grant
        if grant is not None and reason:  # the policy accepted the reason just before
            grant = replace(grant, break_glass=reason)
        base = f"{request.url.scheme}://{request.url.netloc}/fhir"
        user = viewer.grant.fhir_user or f"Practitioner/{viewer.name}"
        cards: list[dict[str, Any]] = []
        problems: list[str] = []
        for service in active_services(self.ctx.env.repository).values():
            if service.hook != "patient-view":
                continue
            body = {
                "hook": "patient-view",
                "hookInstance": str(uuid.uuid4()),
                "context": {"userId": user, "patientId": pid},
            }
            status, answer = self.hooks.invoke(service.id, body, grant, base)
            if status != 200:
                problems.append(f"{service.title}: {answer.get('error', f'HTTP {status}')}")
                continue
            cards += [{**c, "service": service.id} for c in answer.get("cards", [])]
        order = {"critical": 0, "warning": 1, "info": 2}
        cards.sort(key=lambda c: order.get(str(c.get("indicator")), 3))
        return cards, problems

    async def break_glass(self, request: Request) -> Response:
        """``POST /patients/{id}/break-glass`` (htmx): check the reason through the API
        (a Patient read with ``X-Break-Glass``, audited) and grant an hour of access."""
        from starlette.concurrency import run_in_threadpool

        viewer = Viewer.of(request)
        viewer.require(*PATIENT_DATA)
        pid = self._patient_id(request)
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        reason = " ".join(form.get("reason", "").split())
        if not reason or len(reason) > 500:
            return _fragment("<p role='alert'>Give a reason of 1 to 500 characters.</p>")
        try:
            await run_in_threadpool(
                self.ctx.fhir,
                request,
                "GET",
                f"Patient/{pid}",
                None,
                None,
                {"x-break-glass": reason},
            )
        except FhirCallError as exc:
            return _fragment(f"<p role='alert'>Access refused: {_escape(str(exc))}</p>")
        response = _fragment("<p role='status'>Access recorded; opening the chart.</p>")
        response.headers["hx-redirect"] = f"/patients/{pid}"
        self.glass.grant(response, request, viewer, pid, reason)
        return response


def _gaps(summary: Any, pid: str) -> list[dict[str, str]]:
    """The patient's open care gaps in the period, from the period's quality summary
    (:func:`cmio.oversight.quality.quality_summary`: one evaluation of the measures over
    the store, cached under ``quality:<period>`` and shared with the quality pages and
    the executive overview)."""
    from cmio.oversight.quality import QualitySummary

    if not isinstance(summary, QualitySummary):  # another kind of value under the key
        raise TypeError(f"a quality summary was expected, not {type(summary).__name__}")
    return [
        {
            "measure": m.id,
            "title": m.title,
            "missing": m.missing,
            "since": g.since,
            "clinician": g.clinician_label,
        }
        for m in summary.measures
        for g in m.gaps
        if g.patient_id == pid
    ]


def _poll(request: Request) -> dict[str, Any]:
    """The next attempt and its delay for a fragment that asks again until ready."""
    try:
        attempt = max(0, min(20, int(request.headers.get("x-cmio-poll", "0"))))
    except ValueError:
        attempt = 0
    return {"attempt": attempt + 1, "delay": POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)]}


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def _fragment(html: str) -> HTMLResponse:
    response = HTMLResponse(html)
    response.headers["cache-control"] = "no-store"
    return response
