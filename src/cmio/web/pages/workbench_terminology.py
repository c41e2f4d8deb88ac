"""Terminology browser (issue 12, item 7): code search across systems, concept pages with
their hierarchy, value set expansion and membership checks.

Search runs in-process on the server's terminology service
(:mod:`cmio.web.pages.workbench_terminology_search`); concept pages, expansions and
membership checks call the FHIR operations as the viewer
(https://hl7.org/fhir/R4/codesystem-operation-lookup.html,
https://hl7.org/fhir/R4/valueset-operation-expand.html,
https://hl7.org/fhir/R4/valueset-operation-validate-code.html), so the page shows what
the API answers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.terminology.service import TerminologyService
from cmio.web.context import FhirCallError, Viewer, WebContext
from cmio.web.pages import WORKBENCH, NavItem
from cmio.web.pages.workbench_terminology_search import (
    Catalog,
    ValueSetEntry,
    code_systems,
    core_catalog,
    core_value_sets,
    search_codes,
    value_sets,
)

__all__ = ["PAGE", "ROLES", "nav", "routes"]

ROLES = (*WORKBENCH, "analyst", "clinician")
"""Who uses the terminology browser."""
PAGE = 50
"""Rows per page of search results, value sets and expansions."""

nav = (NavItem("Terminology", "/workbench/terminology", "Workbench", ROLES),)


def _offset(request: Request) -> int:
    text = request.query_params.get("offset", "0")
    return int(text) if text.isdigit() else 0


def _parameters(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A Parameters resource by parameter name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for parameter in body.get("parameter") or []:
        out.setdefault(str(parameter.get("name")), []).append(parameter)
    return out


def _value(parameter: dict[str, Any]) -> Any:
    for key, value in parameter.items():
        if key.startswith("value"):
            return value
    return None


class TerminologyPages:
    """The browser's handlers over one web context."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def service(self) -> TerminologyService | None:
        """The server's terminology service (None: the server offers none)."""
        return self.ctx.env.terminology

    def catalog(self, service: TerminologyService) -> Catalog:
        """The searchable systems (the core index cached for good; the store's part per
        change of terminology resources)."""
        core = self.ctx.cache.get("terminology:core", core_catalog)
        key = f"terminology:systems:{service.resources.generation}"
        if self.ctx.cache.peek(key) is None:  # a terminology write: drop older catalogs
            self.ctx.cache.invalidate("terminology:systems:")
        return self.ctx.cache.get(key, lambda: code_systems(service, core))

    def valuesets(self, service: TerminologyService) -> list[ValueSetEntry]:
        """The value sets to pick from."""
        core = self.ctx.cache.get("terminology:core-valuesets", core_value_sets)
        key = f"terminology:valuesets:{service.resources.generation}"
        if self.ctx.cache.peek(key) is None:
            self.ctx.cache.invalidate("terminology:valuesets:")
        return self.ctx.cache.get(key, lambda: value_sets(service, core))

    def _ucum(self) -> Any:
        from cmio.terminology.ucum import Ucum

        return self.ctx.cache.get("terminology:ucum", Ucum)

    def _search(self, request: Request) -> dict[str, Any]:
        service = self.service()
        text = request.query_params.get("q", "").strip()
        system = request.query_params.get("system") or None
        values: dict[str, Any] = {"q": text, "system": system, "result": None, "systems": []}
        if service is None:
            values["error"] = "This server has no terminology service."
            return values
        catalog = self.catalog(service)
        values["systems"] = catalog.systems
        if system is not None and all(s.url != system for s in catalog.systems):
            values["error"] = f"Unknown code system {system}."
            return values
        if text:
            values["result"] = search_codes(
                service, catalog, text, system, _offset(request), PAGE, self._ucum()
            )
        return values

    def search_page(self, request: Request) -> Response:
        """The search page (with results when ``q`` is given)."""
        Viewer.of(request).require(*ROLES)
        values = self._search(request)
        status = 400 if values.get("error") else 200
        return self.ctx.render(
            request, "workbench/terminology.html", title="Terminology", status=status, **values
        )

    def results(self, request: Request) -> Response:
        """The results table alone (the live search's htmx target)."""
        Viewer.of(request).require(*ROLES)
        values = self._search(request)
        return self.ctx.render(
            request, "workbench/terminology_results.html", title="Terminology", **values
        )

    def concept(self, request: Request) -> Response:
        """One concept: ``$lookup`` display, properties, parents and children."""
        Viewer.of(request).require(*ROLES)
        system = request.query_params.get("system", "")
        code = request.query_params.get("code", "")
        values: dict[str, Any] = {"system": system, "code": code, "error": None, "found": None}
        status = 200
        if not system or not code:
            values["error"] = "Give both a system and a code."
            status = 400
        else:
            try:
                answer = self.ctx.fhir(
                    request,
                    "GET",
                    "CodeSystem/$lookup",
                    [("system", system), ("code", code), ("property", "*")],
                )
                values["found"] = _concept_view(answer)
            except FhirCallError as error:
                values["error"] = str(error)
                status = error.status
        title = f"{code} · concept" if code else "Concept"
        return self.ctx.render(
            request, "workbench/terminology_concept.html", title=title, status=status, **values
        )

    def valueset_list(self, request: Request) -> Response:
        """Value sets to pick (the store's and the core package's), filtered and paged."""
        Viewer.of(request).require(*ROLES)
        service = self.service()
        text = request.query_params.get("q", "").strip().lower()
        offset = _offset(request)
        found = self.valuesets(service) if service is not None else []
        if text:
            found = [v for v in found if text in v.title.lower() or text in v.url.lower()]
        template = (
            "workbench/terminology_valueset_rows.html"
            if request.headers.get("hx-request") == "true"
            else "workbench/terminology_valuesets.html"
        )
        return self.ctx.render(
            request,
            template,
            title="Value sets",
            q=request.query_params.get("q", ""),
            rows=found[offset : offset + PAGE],
            total=len(found),
            offset=offset,
            page=PAGE,
        )

    def valueset(self, request: Request) -> Response:
        """One value set: ``$expand`` with a filter, paged, and the membership form."""
        Viewer.of(request).require(*ROLES)
        url = request.query_params.get("url", "")
        version = request.query_params.get("version") or None
        text = request.query_params.get("filter", "").strip()
        offset = _offset(request)
        values: dict[str, Any] = {
            "url": url,
            "version": version,
            "filter": text,
            "offset": offset,
            "page": PAGE,
            "expansion": None,
            "error": None,
            "vs_title": url,
        }
        status = 200
        query = [("url", url), ("count", str(PAGE)), ("offset", str(offset))]
        if version:
            query.append(("valueSetVersion", version))
        if text:
            query.append(("filter", text))
        if not url:
            values["error"] = "Pick a value set."
            status = 400
        else:
            try:
                answer = self.ctx.fhir(request, "GET", "ValueSet/$expand", query)
                values["expansion"] = answer.get("expansion") or {}
                values["vs_title"] = answer.get("title") or answer.get("name") or url
            except FhirCallError as error:
                values["error"] = str(error)
                status = error.status
        return self.ctx.render(
            request,
            "workbench/terminology_valueset.html",
            title="Value set",
            status=status,
            **values,
        )

    def check(self, request: Request) -> Response:
        """Membership: ``$validate-code`` of a system and code in the value set."""
        Viewer.of(request).require(*ROLES)
        url = request.query_params.get("url", "")
        version = request.query_params.get("version") or None
        system = request.query_params.get("system", "").strip()
        code = request.query_params.get("code", "").strip()
        values: dict[str, Any] = {
            "url": url,
            "version": version,
            "system": system,
            "code": code,
            "member": None,
            "message": "",
            "display": None,
            "error": None,
        }
        status = 200
        if not url or not code:
            values["error"] = "Give a code (and its system) to check."
            status = 400
        else:
            query = [("url", url), ("code", code)]
            if system:
                query.append(("system", system))
            if version:
                query.append(("valueSetVersion", version))
            try:
                answer = _parameters(
                    self.ctx.fhir(request, "GET", "ValueSet/$validate-code", query)
                )
                values["member"] = bool(_value((answer.get("result") or [{}])[0]))
                values["message"] = _value((answer.get("message") or [{}])[0]) or ""
                values["display"] = _value((answer.get("display") or [{}])[0])
            except FhirCallError as error:
                values["error"] = str(error)
                status = error.status
        template = "workbench/terminology_check_page.html"
        if request.headers.get("hx-request") == "true":
            status = 200  # htmx swaps only successful answers; the alert says what went wrong
            template = "workbench/terminology_check.html"
        return self.ctx.render(
            request,
            template,
            title="Membership",
            status=status,
            **values,
        )


def _concept_view(answer: dict[str, Any]) -> dict[str, Any]:
    """The parts of a ``$lookup`` answer the concept page shows."""
    params = _parameters(answer)

    def first(name: str) -> Any:
        found = params.get(name)
        return _value(found[0]) if found else None

    properties: list[tuple[str, str, str]] = []
    parents: list[tuple[str, str]] = []
    children: list[tuple[str, str]] = []
    for prop in params.get("property", []):
        parts = _parameters({"parameter": prop.get("part") or []})
        code = str(_value((parts.get("code") or [{}])[0]))
        value = _value((parts.get("value") or [{}])[0])
        if isinstance(value, dict):  # a Coding
            value = value.get("code")
        description = _value((parts.get("description") or [{}])[0]) or ""
        if code == "parent":
            parents.append((str(value), str(description)))
        elif code == "child":
            children.append((str(value), str(description)))
        else:
            properties.append(
                (code, str(value).lower() if isinstance(value, bool) else str(value), description)
            )
    designations = []
    for designation in params.get("designation", []):
        parts = _parameters({"parameter": designation.get("part") or []})
        use = _value((parts.get("use") or [{}])[0])
        designations.append(
            (
                _value((parts.get("language") or [{}])[0]) or "",
                (use or {}).get("display") or (use or {}).get("code") or "",
                _value((parts.get("value") or [{}])[0]) or "",
            )
        )
    return {
        "name": first("name"),
        "version": first("version"),
        "display": first("display"),
        "definition": first("definition"),
        "abstract": first("abstract"),
        "properties": properties,
        "parents": parents,
        "children": children,
        "designations": designations,
    }


def routes(ctx: WebContext) -> list[Route]:
    """The browser's routes."""
    pages = TerminologyPages(ctx)
    return [
        Route("/workbench/terminology", pages.search_page),
        Route("/workbench/terminology/results", pages.results),
        Route("/workbench/terminology/concept", pages.concept),
        Route("/workbench/terminology/valuesets", pages.valueset_list),
        Route("/workbench/terminology/valueset", pages.valueset),
        Route("/workbench/terminology/valueset/check", pages.check),
    ]
