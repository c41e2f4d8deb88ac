"""The executive overview: the organization at a glance for a period.

One section per oversight area (quality, EHR use, cost, interfaces, data quality,
governance) with its headline tiles (value, target or context, status, a trend
sparkline) linking to the area's page. Summaries come from :mod:`cmio.oversight.areas`
through the web app's cache (shared with the areas' own pages), warmed for the default
period at startup; an area that is missing or fails shows a *not available* tile, and
an area still being computed a calm *computing* placeholder that htmx replaces with the
area's tiles when they are ready (the page never waits for a computation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cmio.oversight.areas import AREAS, Area, AreaResult, Pending, area_by_key, collect
from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod
from cmio.web.context import POLL_DELAYS, Viewer, WebContext
from cmio.web.pages import OVERSIGHT, NavItem

__all__ = ["nav", "routes", "sparkline", "with_period"]

nav = (NavItem("Overview", "/overview", "Oversight", OVERSIGHT),)

_SPARK_W, _SPARK_H = 120.0, 28.0


def sparkline(points: Sequence[tuple[str, float]], label: str) -> Markup:
    """A trend as a small inline SVG line (no script), named for screen readers
    (https://www.w3.org/TR/svg-aam-1.0/): ``label: first value (month) to last value``."""
    values = [float(v) for _, v in points]
    if len(values) < 2:
        return Markup("")
    low, high = min(values), max(values)
    spread = (high - low) or 1.0
    step = _SPARK_W / (len(values) - 1)
    coords = " ".join(
        f"{i * step:.1f},{_SPARK_H - 2 - (v - low) / spread * (_SPARK_H - 4):.1f}"
        for i, v in enumerate(values)
    )
    name = (
        f"{label} trend: {_short(values[0])} in {points[0][0]} "
        f"to {_short(values[-1])} in {points[-1][0]}"
    )
    return Markup(
        '<svg class="spark" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" '
        'role="img" aria-label="{name}"><polyline points="{coords}"/></svg>'
    ).format(w=_SPARK_W, h=_SPARK_H, name=name, coords=coords)


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def with_period(href: str, period: ReportingPeriod) -> str:
    """``href`` with ``?period=`` added when it names no period yet."""
    if not href or "period=" in href:
        return href
    return f"{href}{'&' if '?' in href else '?'}period={period.label}"


@dataclass(frozen=True, slots=True)
class _Tile:
    headline: Headline
    href: str
    spark: Markup


@dataclass(frozen=True, slots=True)
class _AreaView:
    result: AreaResult
    href: str
    tiles: list[_Tile]
    attempt: int = 0
    delay: float = 0.0


def _view(result: AreaResult, period: ReportingPeriod, attempt: int = 0) -> _AreaView:
    tiles = [
        _Tile(h, with_period(h.href or result.area.href, period), sparkline(h.trend, h.label))
        for h in result.headlines
    ]
    delay = POLL_DELAYS[min(attempt, len(POLL_DELAYS) - 1)]
    return _AreaView(result, with_period(result.area.href, period), tiles, attempt + 1, delay)


def _attempt(request: Request) -> int:
    try:
        return max(0, min(20, int(request.headers.get("x-cmio-poll", "0"))))
    except ValueError:
        return 0


def routes(ctx: WebContext) -> list[Route]:
    """``/overview``: the executive overview (OVERSIGHT roles); ``/overview/area/{key}``:
    one area's section (what a *computing* placeholder asks for until it is ready)."""

    def warm() -> int:
        period = ReportingPeriod.year_of(ctx.data_end())
        return len(collect(ctx.area_inputs(), period, get=ctx.cache.get))

    ctx.cache.warm([("overview:warm", warm)])

    def ready_or_pending(key: str, compute: Callable[[], Any]) -> Any:
        """The memo of the page: a summary not ready yet makes the area *pending*."""
        ready, value = ctx.cache.lookup(key, compute, ctx.compute_wait)
        if not ready:
            raise Pending(key)
        return value

    def results(period: ReportingPeriod, areas: Sequence[Area]) -> list[AreaResult]:
        return collect(ctx.area_inputs(), period, areas=areas, get=ready_or_pending)

    def overview(request: Request) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        try:
            period = ctx.period(request)
        except ValueError as exc:
            fallback = ReportingPeriod.year_of(ctx.data_end())
            return ctx.render(
                request,
                "overview/index.html",
                title="Overview",
                period=fallback,
                error=str(exc),
                areas=[],
                status=400,
            )
        return ctx.render(
            request,
            "overview/index.html",
            title="Overview",
            period=period,
            error="",
            areas=[_view(r, period) for r in results(period, AREAS)],
        )

    def section(request: Request) -> Response:
        Viewer.of(request).require(*OVERSIGHT)
        try:
            period = ctx.period(request)
            area = area_by_key(str(request.path_params["key"]))
        except (ValueError, KeyError):
            raise HTTPException(404) from None
        (result,) = results(period, [area])
        return ctx.render(
            request,
            "overview/_area.html",
            title="Overview",
            period=period,
            view=_view(result, period, _attempt(request)),
        )

    return [Route("/overview", overview), Route("/overview/area/{key}", section)]
