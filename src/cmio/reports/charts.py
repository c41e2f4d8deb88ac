"""Vega-Lite charts to SVG and PNG, offline, through ``vl_convert``.

https://github.com/vega/vl-convert; the spec language: https://vega.github.io/vega-lite/.
"""

from __future__ import annotations

import vl_convert

from cmio.reports.model import Chart, ReportError

__all__ = ["chart_png", "chart_svg"]


def chart_svg(chart: Chart) -> str:
    """The chart as an SVG document.

    Raises:
        ReportError: the renderer refused the spec (its message, first line).
    """
    try:
        return str(vl_convert.vegalite_to_svg(dict(chart.spec)))
    except ValueError as exc:
        raise ReportError(f"Chart {chart.title!r}: {_first_lines(exc)}") from exc


def chart_png(chart: Chart, scale: float = 2.0) -> bytes:
    """The chart as a PNG image at ``scale`` (2: sharp when printed).

    Raises:
        ReportError: the renderer refused the spec.
    """
    try:
        return bytes(vl_convert.vegalite_to_png(dict(chart.spec), scale=scale))
    except ValueError as exc:
        raise ReportError(f"Chart {chart.title!r}: {_first_lines(exc)}") from exc


def _first_lines(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
