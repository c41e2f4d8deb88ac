"""What every page works with: the server's services, the viewer, templates and cache.

Pages never reach for globals: the :class:`WebContext` is built once per web app and
handed to each page module's ``routes(ctx)``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cmio.oversight.period import ReportingPeriod
from cmio.security.grant import AccessGrant
from cmio.security.scopes import ScopeSet
from cmio.web.cache import ResultCache

if TYPE_CHECKING:
    from cmio.api.env import Env
    from cmio.api.router import FhirRouter
    from cmio.security.oauth.server import AuthServer
    from cmio.web.pages import NavItem

__all__ = ["FhirCallError", "Forbidden", "Viewer", "WebContext", "chart_markup"]

GRANT_KEY = "cmio.grant"  # set by the authentication gate (cmio.api.auth.GRANT_KEY)
CSRF_COOKIE = "cmio_csrf"


class Forbidden(Exception):
    """The viewer may not see this page or do this action (rendered as a 403 page)."""


class FhirCallError(Exception):
    """A FHIR interaction made for a page failed (its status and OperationOutcome).

    Attributes:
        status: the HTTP status. outcome: the OperationOutcome (or an empty dict).
    """

    def __init__(self, status: int, outcome: dict[str, Any]) -> None:
        issues = outcome.get("issue", [])
        text = "; ".join(str(i.get("diagnostics", i.get("code", ""))) for i in issues)
        super().__init__(text or f"HTTP {status}")
        self.status = status
        self.outcome = outcome


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page.

    Attributes:
        grant: their access grant (unrestricted and unauthenticated when auth is off).
        scopes: the grant's parsed SMART scopes.
    """

    grant: AccessGrant
    scopes: ScopeSet = field(repr=False)

    @classmethod
    def of(cls, request: Request) -> Viewer:
        """The viewer of a request (auth off: the unrestricted local user)."""
        grant = request.scope.get(GRANT_KEY)
        if not isinstance(grant, AccessGrant):
            grant = AccessGrant.unrestricted()
        return cls(grant, ScopeSet.parse(grant.scopes))

    @property
    def name(self) -> str:
        """The user name (``local`` when authentication is off)."""
        return self.grant.subject

    @property
    def roles(self) -> frozenset[str]:
        """The organization roles (empty when authentication is off)."""
        return self.grant.roles

    @property
    def unrestricted(self) -> bool:
        """Authentication is off: every page and action is open."""
        return self.grant.kind == "local"

    def has_role(self, *roles: str) -> bool:
        """Whether the viewer holds one of ``roles`` (always true when unrestricted)."""
        return self.unrestricted or bool(self.grant.roles & set(roles))

    def can(self, permission: str, resource_type: str) -> bool:
        """Whether some scope grants ``permission`` (one of ``cruds``) on the type
        (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html)."""
        return self.unrestricted or self.scopes.allows(permission, resource_type)

    def require(self, *roles: str) -> None:
        """Raise :class:`Forbidden` unless the viewer holds one of ``roles``."""
        if not self.has_role(*roles):
            raise Forbidden(f"This page is for: {', '.join(roles)}.")


def chart_markup(spec: dict[str, Any], title: str, description: str) -> Markup:
    """A Vega-Lite chart as accessible HTML: a figure with a caption and the spec as data
    (``cmio.js`` embeds it, CSP-safe: no inline script runs). The description becomes
    the drawn SVG's accessible name (https://vega.github.io/vega-lite/docs/spec.html)."""
    spec = {**spec, "description": spec.get("description") or f"{title}: {description}"}
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    return Markup(
        "<figure class='chart'><figcaption>{title}</figcaption>"
        "<div class='vl-chart'></div>"
        "<script type='application/json' class='vl-spec'>{data}</script></figure>"
    ).format(title=title, data=Markup(data))


class WebContext:
    """The services the pages share.

    Args:
        env: the server's store, model, terminology and settings.
        auth: the authorization server (None: authentication is off).
        router: the FHIR router: patient-level reads go through it with the viewer's
            grant, so they are authorized and audited like any API call.
        cache: results kept for the pages (measures, EHR use, cost ...).
    """

    def __init__(
        self,
        env: Env,
        router: FhirRouter,
        auth: AuthServer | None = None,
        cache: ResultCache | None = None,
    ) -> None:
        self.env = env
        self.router = router
        self.auth = auth
        self.cache = cache if cache is not None else ResultCache(deferred=True)
        self.cds: Any = None
        """The server's CDS Hooks service (:class:`cmio.api.cds_hooks.CdsHooks`), set by the
        application once built (None: a page builds its own)."""
        self.nav: list[NavItem] = []
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("cmio.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals["chart"] = chart_markup
        self.templates.filters["num"] = _num
        self.templates.filters["pct"] = _pct

    def fhir(
        self,
        request: Request,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One FHIR interaction as the viewer (https://hl7.org/fhir/R4/http.html):
        authorized by their grant and audited. Call it from a sync endpoint (a worker
        thread), never from the event loop. ``headers``: extra request headers (lower
        case), e.g. ``x-break-glass`` with the viewer's reason.

        Raises:
            FhirCallError: a status of 400 or more (403 when the grant does not allow it).
        """
        from cmio.api.context import RequestContext
        from cmio.api.http import FhirRequest

        viewer = Viewer.of(request)
        grant = None if viewer.unrestricted else viewer.grant
        client = request.client.host if request.client else None
        base = f"{request.url.scheme}://{request.url.netloc}/fhir"
        headers = {**(headers or {}), "accept": "application/fhir+json"}
        data = b""
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["content-type"] = "application/fhir+json"
        answer = self.router.handle(
            FhirRequest(
                method,
                path.lstrip("/"),
                list(query or []),
                headers,
                data,
                base,
                RequestContext(principal=viewer.name, remote_addr=client, grant=grant),
            )
        )
        result: dict[str, Any] = json.loads(answer.body) if answer.body else {}
        if answer.status >= 400:
            raise FhirCallError(answer.status, result)
        return result

    def data_end(self) -> date:
        """The last day with clinical activity (Encounter starts), cached: the default
        period is the calendar year containing it."""
        return self.cache.get("data-end", self._data_end)

    def _data_end(self) -> date:
        from cmio.api.http import FhirRequest

        answer = self.router.handle(
            FhirRequest("GET", "Encounter", [("_sort", "-date"), ("_count", "1")])
        )
        bundle = json.loads(answer.body) if answer.status == 200 else {}
        for entry in bundle.get("entry", []):
            text = str(entry.get("resource", {}).get("period", {}).get("start", ""))[:10]
            try:
                return date.fromisoformat(text)
            except ValueError:
                break
        return date.today()

    def period(self, request: Request) -> ReportingPeriod:
        """The ``period`` query parameter, or the year of the latest data.

        Raises:
            ValueError: a period text that does not parse (the page says so).
        """
        text = request.query_params.get("period")
        if text:
            return ReportingPeriod.parse(text)
        return ReportingPeriod.year_of(self.data_end())

    def render(
        self, request: Request, template: str, *, title: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """Render a page inside the layout (navigation for the viewer's roles, CSRF
        token for htmx actions, server time in a ``Server-Timing`` header)."""
        started = time.perf_counter()
        viewer = Viewer.of(request)
        nav = [item for item in self.nav if item.visible_to(viewer)]
        htmx = request.headers.get("hx-request") == "true"
        body = self.templates.get_template(template).render(
            request=request,
            viewer=viewer,
            nav=nav,
            title=title,
            path=request.url.path,
            csrf=request.scope.get("cmio.csrf", ""),
            partial=htmx and request.headers.get("hx-boosted") != "true",
            **values,
        )
        spent = (time.perf_counter() - started) * 1000
        response = HTMLResponse(body, status_code=status)
        response.headers["server-timing"] = f"render;dur={spent:.1f}"
        response.headers["cache-control"] = "no-store"
        return response


def _num(value: Any, digits: int = 0) -> str:
    """``12,345`` or ``1,234.5``; an em dash for no value."""
    if value is None:
        return "\u2014"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    """A ratio (0-1) as ``42.0%``; an em dash for no value."""
    if value is None:
        return "\u2014"
    return f"{float(value) * 100:.{digits}f}%"
