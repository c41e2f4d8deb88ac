"""One figure of the executive overview: a tile that drills down."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Headline"]


@dataclass(frozen=True, slots=True)
class Headline:
    """A headline figure of an oversight area.

    Attributes:
        area: ``quality``, ``ehr-use``, ``cost``, ``interfaces``, ``data-quality`` or
            ``governance``.
        label: what is measured, e.g. ``Diabetes: HbA1c poor control (CMS122)``.
        value: the formatted figure, e.g. ``18.2%``.
        detail: context, e.g. ``target <= 20% · -1.3 pts vs 2024``.
        status: ``good``, ``warn``, ``bad`` or empty (no judgement).
        href: the page that explains the figure (drill-down).
        trend: ``(YYYY-MM, value)`` points for a sparkline, oldest first.
    """

    area: str
    label: str
    value: str
    detail: str = ""
    status: str = ""
    href: str = ""
    trend: tuple[tuple[str, float], ...] = ()
