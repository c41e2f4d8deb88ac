"""Reports: the steering-committee report for a chosen period, as PDF or HTML.

``/reports`` offers the period form and the download links;
``/reports/steering.pdf?period=...`` and ``/reports/steering.html?period=...`` build the
report (:mod:`cmio.oversight.steering`) from the summaries the dashboards cache, so a
period already shown on the overview is ready at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.areas import AREAS, AreaInputs
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.steering import gather, steering_report
from cmio.reports import Report, render_html, render_pdf
from cmio.web.context import Viewer, WebContext
from cmio.web.pages import OVERSIGHT, NavItem

__all__ = ["nav", "routes"]

nav = (NavItem("Steering report", "/reports", "Reports", OVERSIGHT),)

_MEDIA = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


def routes(ctx: WebContext) -> list[Route]:
    """``/reports`` and the report downloads (OVERSIGHT roles)."""

    def inputs() -> AreaInputs:
        return ctx.area_inputs()

    def report(period: ReportingPeriod) -> Report:
        def build() -> Report:
            return steering_report(gather(inputs(), period, get=ctx.cache.get, peek=ctx.cache.peek))

        built: Report = ctx.cache.get(f"steering:{period.label}", build)
        return built

    def rendered(period: ReportingPeriod, fmt: str) -> bytes:
        def build() -> bytes:
            doc = report(period)
            return render_pdf(doc) if fmt == "pdf" else render_html(doc).encode("utf-8")

        body: bytes = ctx.cache.get(f"steering:{period.label}:{fmt}", build)
        return body

    def bad_period(request: Request, error: str) -> Response:
        fallback = ReportingPeriod.year_of(ctx.data_end())
        return ctx.render(
            request, "reports/index.html", title="Steering committee report",
            period=fallback, error=error, areas=[], status=400,
        )  # fmt: skip

    def index(request: Request) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        try:
            period = ctx.period(request)
        except ValueError as exc:
            return bad_period(request, str(exc))
        ready = {area.key: ctx.cache.peek(area.cache_key(period)) is not None for area in AREAS}
        return ctx.render(
            request,
            "reports/index.html",
            title="Steering committee report",
            period=period,
            previous=period.previous(),
            error="",
            areas=[(area, ready[area.key]) for area in AREAS],
        )

    def download(request: Request, fmt: str) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        try:
            period = ctx.period(request)
        except ValueError as exc:
            return bad_period(request, str(exc))
        name = f"steering-{period.label.replace('/', '_')}.{fmt}"
        disposition = "attachment" if fmt == "pdf" else "inline"
        return Response(
            rendered(period, fmt),
            media_type=_MEDIA[fmt],
            headers={
                "content-disposition": f'{disposition}; filename="{name}"',
                "cache-control": "no-store",
            },
        )

    return [
        Route("/reports", index),
        Route("/reports/steering.pdf", lambda request: download(request, "pdf")),
        Route("/reports/steering.html", lambda request: download(request, "html")),
    ]
