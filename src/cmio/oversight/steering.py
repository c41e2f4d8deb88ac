"""The steering-committee report: every oversight area's figures for a period.

An executive summary (each area's headlines, with the change from the previous period
of the same kind) followed by each area's own report sections (measure trends, EHR use,
cost, interfaces, data quality, governance decisions), as a :class:`cmio.reports.Report`
rendered to PDF and HTML by :mod:`cmio.reports`. Areas that are not available say why.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cmio.oversight.areas import AREAS, Area, AreaInputs, AreaResult, Getter, collect
from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod
from cmio.reports.model import Metric, MetricRow, Paragraph, Report, Section, Table

__all__ = [
    "HeadlineDelta",
    "SteeringData",
    "gather",
    "headline_deltas",
    "headline_number",
    "steering_report",
]

_NUMBER = re.compile(r"[-+\u2212]?\d[\d,]*(?:\.\d+)?")
_MAX_TILES = 12


def headline_number(text: str) -> float | None:
    """The first number in a headline's value (``"18.2%"`` -> 18.2, ``"$1,204"`` -> 1204)."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group(0).replace(",", "").replace("\u2212", "-"))


def _decimals(text: str) -> int:
    match = _NUMBER.search(text)
    if match is None or "." not in match.group(0):
        return 0
    return len(match.group(0).split(".", 1)[1])


@dataclass(frozen=True, slots=True)
class HeadlineDelta:
    """A headline of this period beside the same headline of the previous period.

    Attributes:
        area: the area's title. label: the headline's label.
        current: this period's value. previous: the previous period's value (empty if
            it had none). change: the difference as text (``+1.3 pts``, ``-12``, or
            empty when not comparable).
    """

    area: str
    label: str
    current: str
    previous: str
    change: str


def _change(current: str, previous: str) -> str:
    now, before = headline_number(current), headline_number(previous)
    if now is None or before is None:
        return ""
    digits = max(_decimals(current), _decimals(previous))
    diff = round(now - before, digits)
    text = f"{diff:+,.{digits}f}"
    if current.rstrip().endswith("%"):
        return f"{text} pts"
    if current.lstrip().startswith("$"):
        return f"{text[0]}${text[1:]}"
    return text


def _stated_change(detail: str, previous_label: str) -> str:
    """The change an area already states in a headline's detail (``-6.7 pts vs 2025-09``):
    computed from unrounded figures, so the report repeats it rather than recomputing."""
    if not previous_label:
        return ""
    pattern = rf"([-+\u2212]\d[\d,]*(?:\.\d+)?(?:\s*[A-Za-z%$]+)?)\s+vs\.?\s+{re.escape(previous_label)}\b"
    match = re.search(pattern, detail)
    return match.group(1).replace("\u2212", "-") if match else ""


def headline_deltas(
    current: Sequence[AreaResult],
    previous: Sequence[AreaResult],
    previous_label: str = "",
) -> list[HeadlineDelta]:
    """Pair each headline of this period with the same (area, label) of the previous one;
    the change is the one the headline's detail states against ``previous_label``, else
    the difference of the two figures as shown."""
    before: dict[tuple[str, str], Headline] = {
        (h.area, h.label): h for result in previous for h in result.headlines
    }
    out: list[HeadlineDelta] = []
    for result in current:
        for h in result.headlines:
            old = before.get((h.area, h.label))
            old_value = old.value if old is not None else ""
            change = _stated_change(h.detail, previous_label) or _change(h.value, old_value)
            out.append(HeadlineDelta(result.area.title, h.label, h.value, old_value, change))
    return out


@dataclass(frozen=True, slots=True)
class SteeringData:
    """What the report is made of.

    Attributes:
        period: the reporting period. previous: the period compared against.
        current: each area's result for the period (with report sections).
        earlier: each area's result for the previous period (headlines only).
    """

    period: ReportingPeriod
    previous: ReportingPeriod
    current: list[AreaResult]
    earlier: list[AreaResult]

    @property
    def deltas(self) -> list[HeadlineDelta]:
        """The headlines with their period-over-period change."""
        return headline_deltas(self.current, self.earlier, self.previous.label)


def gather(
    inputs: AreaInputs,
    period: ReportingPeriod,
    *,
    areas: Sequence[Area] = AREAS,
    get: Getter | None = None,
    peek: Callable[[str], Any] | None = None,
    step: Callable[[str], None] | None = None,
) -> SteeringData:
    """Compute every area for ``period`` (with sections) and the previous period.

    The previous period's headlines of an area whose module offers
    ``previous_headlines(summary)`` come from this period's summary (which evaluated the
    previous period for its deltas) unless its own summary is already in the memo
    (``peek``); the other areas' previous summaries go through the memo (``get``).

    Args:
        inputs: what the summaries read. period: the reporting period.
        areas: the areas. get: a memo for the summaries (e.g. the web app's cache).
        peek: the memo's value for a key if ready, else None (never computes).
        step: called with a short description after each area (a progress bar).
    """

    def done(label: str) -> Callable[[AreaResult], None]:
        return lambda result: step(f"{label} {result.area.key}") if step else None

    previous = period.previous()
    current = collect(
        inputs, period, areas=areas, get=get, sections=True, on_area=done(period.label)
    )
    earlier: list[AreaResult] = []
    for area, result in zip(areas, current, strict=True):
        derive = _previous_headlines(area) if result.available else None
        if derive is not None and (peek is None or peek(area.cache_key(previous)) is None):
            earlier.append(AreaResult(area, None, tuple(derive(result.summary))))
            done(previous.label)(earlier[-1])
        else:
            earlier += collect(
                inputs, previous, areas=[area], get=get, on_area=done(previous.label)
            )
    return SteeringData(period, previous, current, earlier)


def _previous_headlines(area: Area) -> Callable[[Any], Sequence[Headline]] | None:
    try:
        module = importlib.import_module(area.module)
    except ImportError:
        return None
    derive = getattr(module, "previous_headlines", None)
    return derive if callable(derive) else None


def _executive_summary(data: SteeringData) -> Section:
    ready = [r for r in data.current if r.available]
    missing = [r for r in data.current if not r.available]
    text = (
        f"Figures for {data.period.label} ({data.period.start.isoformat()} to "
        f"{data.period.end.isoformat()}), compared with {data.previous.label}. "
        f"{len(ready)} of {len(data.current)} areas reported"
    )
    text += f"; not available: {', '.join(r.area.title for r in missing)}." if missing else "."
    blocks: list[Paragraph | MetricRow | Table] = [Paragraph(text)]
    tiles = [Metric(h.label, h.value, h.detail) for r in ready for h in r.headlines]
    if tiles:
        blocks.append(MetricRow(tiles[:_MAX_TILES]))
    rows = [
        [d.area, d.label, d.current, d.previous or "\u2014", d.change or "\u2014"]
        for d in data.deltas
    ]
    if rows:
        blocks.append(
            Table(
                ["Area", "Headline", data.period.label, data.previous.label, "Change"],
                rows,
                caption=f"Headlines, {data.period.label} against {data.previous.label}",
            )
        )
    return Section("Executive summary", blocks)


def steering_report(
    data: SteeringData,
    *,
    title: str = "Steering committee report",
    generated: datetime | None = None,
) -> Report:
    """The report for gathered data (https://py-pdf.github.io/fpdf2/ renders the PDF).

    Args:
        data: from :func:`gather`.
        title: the report's title.
        generated: the generation time (default: now, UTC).
    """
    sections: list[Section] = [_executive_summary(data)]
    for result in data.current:
        if result.available:
            sections.extend(result.sections)
        else:
            sections.append(
                Section(result.area.title, [Paragraph(f"Not available. {result.error}")])
            )
    period = data.period
    subtitle = f"Period {period.label}: {period.start.isoformat()} to {period.end.isoformat()}"
    return Report(title, subtitle, generated or datetime.now(UTC), sections)
