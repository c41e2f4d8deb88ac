"""What every page works with: the server's services, the viewer, templates and cache.

Pages never reach for globals: the :class:`WebContext` is built once per web app and
handed to each page module's ``routes(ctx)``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cmio.oversight.areas import AreaInputs, area_by_key, summarize_area
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.shared import SharedWork
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
POLL_DELAYS = (0.5, 1.0, 1.0, 2.0, 3.0, 5.0)
"""Seconds a *computing* placeholder waits before each new attempt (then 5 s each)."""


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
        self.compute_wait = 0.2
        """Seconds a page waits for a summary being computed before it answers with a
        *computing* placeholder that fills in by itself (htmx polls with backoff)."""
        self._shared: SharedWork | None = None
        self._shared_lock = threading.Lock()
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

    def shared_work(self) -> SharedWork:
        """The work the oversight summaries share (measure results, period-independent
        inputs), replaced once older than the result cache's time to live."""
        with self._shared_lock:
            if self._shared is None or not self._shared.fresh:
                self._shared = SharedWork(
                    self.env.repository, self.env.terminology, ttl=self.cache.ttl
                )
            return self._shared

    def area_inputs(self) -> AreaInputs:
        """What the oversight summaries read, with the shared work."""
        env = self.env
        return AreaInputs(
            env.repository, env.terminology, env.settings.hl7_journal, self.shared_work()
        )

    def area_summary(self, key: str, period: ReportingPeriod) -> Any:
        """An oversight area's summary for ``period`` from the cache (computed once per
        period; the overview, the area's pages and the report share the key).

        Raises:
            KeyError: no area has this key.
            Exception: whatever the summary raised.
        """
        area = area_by_key(key)
        compute = partial(summarize_area, area, self.area_inputs(), period)
        return self.cache.get(area.cache_key(period), compute)

    def area_lookup(self, key: str, period: ReportingPeriod) -> tuple[bool, Any]:
        """Like :meth:`area_summary`, but never blocks a page: ``(True, summary)`` when
        ready, ``(False, None)`` while it is computed in the background (waiting at most
        :attr:`compute_wait` seconds)."""
        area = area_by_key(key)
        compute = partial(summarize_area, area, self.area_inputs(), period)
        return self.cache.lookup(area.cache_key(period), compute, self.compute_wait)

    def pending(
        self, request: Request, *, title: str, what: str, period: ReportingPeriod
    ) -> HTMLResponse:
        """The page's *computing* placeholder: it asks for the page again (htmx, into
        ``<main>``) after a delay that grows with each attempt (0.5 s to 5 s), and the
        server answers with the page once its figures are ready
        (https://htmx.org/attributes/hx-trigger/)."""
        try:
            attempt = max(0, min(20, int(request.headers.get("x-cmio-poll", "0"))))
        except ValueError:
            attempt = 0
        response = self.render(
            request,
            "pending.html",
            title=title,
            what=what,
            period=period,
            url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            attempt=attempt + 1,
            delay=POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)],
        )
        response.headers["retry-after"] = "1"
        return response

    def close(self) -> None:
        """Stop background computations and release the shared work."""
        self.cache.close()
        with self._shared_lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()

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
        partial: bool | str = htmx and request.headers.get("hx-boosted") != "true"
        if partial and request.headers.get("hx-target") == "main":
            partial = "main"  # a placeholder asking for the whole content of <main>
        body = self.templates.get_template(template).render(
            request=request,
            viewer=viewer,
            nav=nav,
            title=title,
            path=request.url.path,
            csrf=request.scope.get("cmio.csrf", ""),
            partial=partial,
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
