"""``/patients``: find a patient by name, identifier or birth date, paged, and a
clinician's own recent patients.

Searches go through the FHIR API as the viewer (https://hl7.org/fhir/R4/patient.html#search),
so a clinician finds only the patients they treat and every search is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from cmio.web.cache import ResultCache
from cmio.web.context import FhirCallError, Viewer
from cmio.web.pages import PATIENT_DATA
from cmio.web.pages.chart_data import demographics

if TYPE_CHECKING:
    from cmio.web.context import WebContext

__all__ = [
    "MY_PATIENTS",
    "MY_PATIENTS_TTL",
    "PAGE_SIZE",
    "RECENT_ENCOUNTERS",
    "PatientRow",
    "PatientSearch",
]

PAGE_SIZE = 20
RECENT_ENCOUNTERS = 60
MY_PATIENTS = 20
MY_PATIENTS_TTL = 30.0
"""Seconds a clinician's recent-patient list is kept for the same grant (page reloads)."""
_DAY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


@dataclass(frozen=True, slots=True)
class PatientRow:
    """One patient in a result list (``last_seen``: the viewer's latest encounter)."""

    id: str
    name: str
    mrn: str
    sex: str
    birth_date: str
    age: int | None
    city: str
    last_seen: str = ""


def _row(patient: dict[str, Any], today: date, last_seen: str = "") -> PatientRow:
    head = demographics(patient, today)
    city = next((str(a.get("city")) for a in patient.get("address", []) if a.get("city")), "")
    return PatientRow(
        head.id, head.name, head.mrn, head.sex, head.birth_date, head.age, city, last_seen
    )


class PatientSearch:
    """The patient search page for one web app."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self._mine = ResultCache(ttl=MY_PATIENTS_TTL)

    def my_patients(self, request: Request, viewer: Viewer) -> list[PatientRow]:
        """The patients of a clinician's most recent encounters, latest first (empty for a
        user who is not a Practitioner); kept :data:`MY_PATIENTS_TTL` seconds per grant.

        The list is read through the FHIR API as the viewer (authorized and audited); a
        reload within the time to live shows the same grant the same list without a
        new search, so nothing is shown that this grant was not allowed to read, and a
        new sign-in, another token or a break-the-glass grant reads afresh.
        """
        user = viewer.grant.fhir_user or ""
        if not viewer.has_role("clinician") or not user.startswith("Practitioner/"):
            return []
        self._mine.prune()
        key = repr(viewer.grant)  # every field of the grant: token, scopes, roles, user
        rows: list[PatientRow] = self._mine.get(key, lambda: self._read_mine(request, user))
        return rows

    def page(self, request: Request) -> Response:
        """``/patients?name=&identifier=&birthdate=&page=``."""
        viewer = Viewer.of(request)
        viewer.require(*PATIENT_DATA)
        params = request.query_params
        terms = {k: params.get(k, "").strip() for k in ("name", "identifier", "birthdate")}
        error = ""
        if terms["birthdate"] and not _DAY.fullmatch(terms["birthdate"]):
            error = "Birth date: write YYYY, YYYY-MM or YYYY-MM-DD."
        page_text = params.get("page", "1")
        page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
        rows: list[PatientRow] = []
        total: int | None = None
        searched = any(terms.values())
        mine = [] if searched else self.my_patients(request, viewer)
        listed = not error and (searched or not mine)  # a clinician's start: their patients
        if listed:
            try:
                rows, total = self.search(request, terms, page)
            except FhirCallError as exc:
                if exc.status != 400:
                    raise
                error = str(exc)
                listed = False
        query = "&".join(f"{k}={v}" for k, v in terms.items() if v)
        pages = max(1, -(-(total or 0) // PAGE_SIZE))
        return self.ctx.render(
            request,
            "chart/patients.html",
            title="Patients",
            terms=terms,
            rows=rows,
            total=total,
            page=page,
            pages=pages,
            query=query,
            mine=mine,
            listed=listed,
            error=error,
            status=400 if error else 200,
        )

    def search(
        self, request: Request, terms: dict[str, str], page: int
    ) -> tuple[list[PatientRow], int | None]:
        """One page of the viewer's search (all the patients they may see without terms)."""
        query = [(k, v) for k, v in terms.items() if v]
        query += [
            ("_sort", "family,given"),
            ("_count", str(PAGE_SIZE)),
            ("_offset", str((page - 1) * PAGE_SIZE)),
            ("_total", "accurate"),
        ]
        bundle = self.ctx.fhir(request, "GET", "Patient", query)
        today = date.today()
        rows = [_row(e["resource"], today) for e in bundle.get("entry", []) if "resource" in e]
        total = bundle.get("total")
        return rows, total if isinstance(total, int) else None

    def _read_mine(self, request: Request, user: str) -> list[PatientRow]:
        bundle = self.ctx.fhir(  # one authorized read: the encounters and their patients
            request,
            "GET",
            "Encounter",
            [
                ("participant", user),
                ("_sort", "-date"),
                ("_count", str(RECENT_ENCOUNTERS)),
                ("_include", "Encounter:subject"),
            ],
        )
        last: dict[str, str] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient":
                by_id[str(resource.get("id"))] = resource
                continue
            ref = str(resource.get("subject", {}).get("reference", ""))
            if ref.startswith("Patient/") and ref[8:] not in last and len(last) < MY_PATIENTS:
                last[ref[8:]] = str(resource.get("period", {}).get("start", ""))[:10]
        today = date.today()
        return [_row(by_id[pid], today, seen) for pid, seen in last.items() if pid in by_id]
