"""The web app: server-rendered pages (Jinja2 + htmx) for the CMIO, executives,
physicians and the informatics team, mounted beside the FHIR API.

Page modules are listed here explicitly; each contributes navigation entries and
routes (:class:`cmio.web.pages.PageModule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from cmio import __version__
from cmio.web.assets import VegaBundle, asset_routes
from cmio.web.context import FhirCallError, Forbidden, Viewer, WebContext
from cmio.web.csrf import CsrfMiddleware
from cmio.web.pages import PageModule

if TYPE_CHECKING:
    from cmio.api.env import Env
    from cmio.api.router import FhirRouter
    from cmio.security.oauth.server import AuthServer

__all__ = ["WebApp", "create_web_app", "page_modules"]

_COUNTED = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Procedure",
    "Immunization",
    "Claim",
    "AuditEvent",
)


def page_modules() -> list[PageModule]:
    """The page modules of the web app, in navigation order."""
    from cmio.web.pages import overview

    modules: list[PageModule] = [overview]
    from cmio.web.pages import quality

    modules.append(quality)  # Oversight: quality measures, strata, care gaps
    from cmio.web.pages import chart

    modules.append(chart)  # Care: patients and the chart
    from cmio.web.pages import cost, ehr_use

    modules += [ehr_use, cost]  # Oversight: physician EHR use, cost of care
    from cmio.web.pages import reports

    modules.append(reports)  # Reports: the steering-committee report
    from cmio.web.pages import governance_board, workbench_terminology

    modules += [workbench_terminology, governance_board]  # Workbench: terminology, governance
    from cmio.web.pages import workbench_interfaces, workbench_rules

    modules.append(workbench_rules)  # Workbench: governed rules and batch runs
    modules.append(workbench_interfaces)  # Workbench: the HL7 interface monitor
    from cmio.web.pages import workbench_data_quality

    modules.append(workbench_data_quality)  # Workbench: data quality (standards adherence)
    return modules


class WebApp:
    """The web app's ASGI callable, its context and its Starlette routes.

    Args:
        ctx: the shared page context.
        routes: extra routes (health probes and the like) served beside the pages.
        modules: the page modules (default: :func:`page_modules`).
    """

    def __init__(
        self,
        ctx: WebContext,
        routes: Sequence[Any] = (),
        modules: Sequence[PageModule] | None = None,
    ) -> None:
        self.ctx = ctx
        self.bundle = VegaBundle()
        page_routes: list[Any] = [Route("/", self.home)]
        for module in page_modules() if modules is None else modules:
            ctx.nav.extend(module.nav)
            page_routes += module.routes(ctx)
        self.starlette = Starlette(
            routes=[*page_routes, *asset_routes(self.bundle), *routes],
            exception_handlers={
                Forbidden: self._forbidden,
                FhirCallError: self._fhir_error,
                404: self._not_found,
            },
        )
        self.asgi = CsrfMiddleware(self.starlette)
        ctx.cache.warm([("vega-bundle", self.bundle.body)])  # about 2 s on first start

    @property
    def router(self) -> Any:
        """The Starlette router (other parts of the server add their routes to it)."""
        return self.starlette.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.ctx.cache.started and _is_page(scope):
            self.ctx.cache.start()  # someone opened a page: compute the dashboards now
        await self.asgi(scope, receive, send)

    def close(self) -> None:
        """Stop background computations (before the store they read is closed)."""
        self.ctx.close()

    def home(self, request: Request) -> Response:
        """The landing page: the viewer's pages and the patient database at a glance."""
        repository = self.ctx.env.repository
        from cmio.store.base import SearchQuery

        counts = [
            (rtype, repository.search(SearchQuery(rtype, count=0)).total or 0) for rtype in _COUNTED
        ]
        return self.ctx.render(
            request,
            "home.html",
            title="cmio",
            counts=counts,
            counts_chart={
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "width": "container",
                "height": 260,
                "data": {"values": [{"type": t, "count": n} for t, n in counts]},
                "mark": {"type": "bar", "color": "#0b5aa6"},
                "encoding": {
                    "y": {"field": "type", "type": "nominal", "sort": "-x", "title": None},
                    "x": {"field": "count", "type": "quantitative", "title": "resources"},
                    "tooltip": [{"field": "type"}, {"field": "count", "format": ","}],
                },
            },
            version=__version__,
            dialect=repository.dialect,
        )

    async def _forbidden(self, request: Request, exc: Exception) -> Response:
        return self.ctx.render(
            request, "error.html", title="Not for your role", message=str(exc), status=403
        )

    async def _fhir_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, FhirCallError) else 500
        title = "Not allowed" if status in (401, 403) else "Could not load this page"
        return self.ctx.render(request, "error.html", title=title, message=str(exc), status=status)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/static/"):
            return HTMLResponse("not found", status_code=404)
        return self.ctx.render(
            request,
            "error.html",
            title="Page not found",
            message=f"There is no page at {request.url.path}.",
            status=404,
        )


_NOT_PAGES = ("/static/", "/health", "/readyz", "/metrics", "/interfaces/health", "/favicon")


def _is_page(scope: Any) -> bool:
    path = str(scope.get("path", ""))
    return scope.get("type") == "http" and not path.startswith(_NOT_PAGES)


def create_web_app(
    env: Env,
    router: FhirRouter,
    auth: AuthServer | None = None,
    routes: Sequence[Any] = (),
    modules: Sequence[PageModule] | None = None,
) -> WebApp:
    """The web app for one server (https://hl7.org/fhir/R4/http.html for the API beside it)."""
    return WebApp(WebContext(env, router, auth), routes, modules)


def viewer_of(request: Request) -> Viewer:
    """The viewer of a request (see :meth:`Viewer.of`)."""
    return Viewer.of(request)
