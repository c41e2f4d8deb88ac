"""The oversight areas the executive overview and the steering-committee report gather.

Each area is a module of :mod:`cmio.oversight` with a summary function (the period's
figures), ``headlines(summary)`` (tiles of the overview) and ``report_sections(summary)``
(sections of the steering-committee report). The areas are listed here as data, in the
order people read them; an area whose module is not installed, or whose summary fails,
is reported as *not available* with the reason instead of failing the whole page or
report.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod

if TYPE_CHECKING:
    from cmio.oversight.shared import SharedWork
    from cmio.reports.model import Section
    from cmio.store.base import Repository
    from cmio.terminology.service import TerminologyService

__all__ = [
    "AREAS",
    "Area",
    "AreaInputs",
    "AreaResult",
    "Getter",
    "Pending",
    "area_by_key",
    "collect",
    "summarize_area",
]

log = logging.getLogger(__name__)

_SLOW_SECONDS = 1.0
"""An area slower than this (a first computation) is logged."""

Getter = Callable[[str, Callable[[], Any]], Any]
"""``get(key, compute)``: a memo such as :meth:`cmio.web.cache.ResultCache.get`."""


class Pending(Exception):
    """Raised by a memo (:data:`Getter`) whose value is still being computed elsewhere:
    :func:`collect` reports the area as pending instead of waiting for it."""


@dataclass(frozen=True, slots=True)
class Area:
    """One oversight area.

    Attributes:
        key: the area's name in cache keys and :class:`Headline.area` (``quality`` ...).
        title: the heading people read. href: its drill-down page.
        module: the module with the summary. function: the summary function's name; it
            takes ``(repository, period)`` and, when it declares them, ``terminology``
            and ``journal``/``hl7_journal``.
    """

    key: str
    title: str
    href: str
    module: str
    function: str

    def cache_key(self, period: ReportingPeriod) -> str:
        """The summary's cache key (shared with the area's own pages)."""
        return f"{self.key}:{period.label}"


AREAS: tuple[Area, ...] = (
    Area("quality", "Quality measures", "/quality", "cmio.oversight.quality", "quality_summary"),
    Area("ehr-use", "Physician EHR use", "/ehr-use", "cmio.oversight.ehr_use", "ehr_use_summary"),
    Area("cost", "Cost of care", "/cost", "cmio.oversight.cost", "cost_summary"),
    Area(
        "interfaces",
        "Interface health",
        "/workbench/interfaces",
        "cmio.oversight.interfaces",
        "interfaces_summary",
    ),
    Area(
        "data-quality",
        "Data quality",
        "/workbench/data-quality",
        "cmio.oversight.data_quality",
        "data_quality_summary",
    ),
    Area(
        "governance",
        "Governance",
        "/workbench/governance",
        "cmio.oversight.governance",
        "governance_summary",
    ),
)
"""The areas, in reading order (immutable: callers pass their own tuple to change it)."""


def area_by_key(key: str, areas: Sequence[Area] = AREAS) -> Area:
    """The area named ``key``.

    Raises:
        KeyError: no such area.
    """
    for area in areas:
        if area.key == key:
            return area
    raise KeyError(key)


@dataclass(frozen=True, slots=True)
class AreaInputs:
    """What the summaries read.

    Attributes:
        repository: the FHIR store. terminology: the terminology service, if any.
        hl7_journal: the HL7 v2 engine's journal file, if any.
        shared: work the summaries share (measure results, period-independent inputs);
            None: each summary computes its own.
    """

    repository: Repository
    terminology: TerminologyService | None = None
    hl7_journal: str | None = None
    shared: SharedWork | None = None


@dataclass(frozen=True, slots=True)
class AreaResult:
    """One area's outcome for a period.

    Attributes:
        area: the area. summary: its summary (None when not available).
        headlines: its tiles. sections: its report sections (filled on request).
        error: why it is not available (empty when it is).
        seconds: how long the summary took (0 when it came from the memo).
        pending: the memo is still computing the summary (see :class:`Pending`).
    """

    area: Area
    summary: Any
    headlines: tuple[Headline, ...] = ()
    sections: tuple[Section, ...] = ()
    error: str = ""
    seconds: float = 0.0
    pending: bool = False

    @property
    def available(self) -> bool:
        """Whether the area produced a summary."""
        return not self.error and not self.pending


def _module(area: Area) -> Any:
    try:
        return importlib.import_module(area.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and area.module.startswith(exc.name):
            raise LookupError(f"{area.title}: not installed ({area.module})") from None
        raise


def summarize_area(area: Area, inputs: AreaInputs, period: ReportingPeriod) -> Any:
    """Compute one area's summary for ``period``.

    Raises:
        LookupError: the area's module or summary function does not exist.
        Exception: whatever the summary raised.
    """
    module = _module(area)
    function = getattr(module, area.function, None)
    if not callable(function):
        raise LookupError(f"{area.title}: {area.module} has no {area.function}()")
    params = inspect.signature(function).parameters
    extra: dict[str, Any] = {}
    if "terminology" in params:
        extra["terminology"] = inputs.terminology
    for name in ("journal", "hl7_journal"):
        if name in params:
            extra[name] = inputs.hl7_journal
    if "shared" in params and inputs.shared is not None:
        extra["shared"] = inputs.shared
    return function(inputs.repository, period, **extra)


def _call(area: Area, name: str, summary: Any) -> tuple[Any, ...]:
    function = getattr(_module(area), name, None)
    if not callable(function):
        raise LookupError(f"{area.title}: {area.module} has no {name}()")
    return tuple(function(summary))


def collect(
    inputs: AreaInputs,
    period: ReportingPeriod,
    *,
    areas: Sequence[Area] = AREAS,
    get: Getter | None = None,
    sections: bool = False,
    on_area: Callable[[AreaResult], None] | None = None,
) -> list[AreaResult]:
    """Every area's summary and headlines (and report sections) for ``period``.

    Args:
        inputs: what the summaries read.
        period: the reporting period.
        areas: the areas to gather (default: all, in reading order).
        get: a memo for the summaries (keys :meth:`Area.cache_key`); default: compute.
        sections: also build each area's report sections.
        on_area: called with each result as it is ready (progress bars).

    Returns:
        One result per area, in order; failures are results with ``error`` set.
    """
    memo: Getter = get if get is not None else (lambda key, compute: compute())
    results: list[AreaResult] = []
    for area in areas:
        started = time.perf_counter()
        try:
            summary = memo(area.cache_key(period), partial(summarize_area, area, inputs, period))
            headlines = _call(area, "headlines", summary)
            parts = _call(area, "report_sections", summary) if sections else ()
        except Pending:
            results.append(AreaResult(area, None, pending=True))
        except LookupError as exc:
            results.append(AreaResult(area, None, error=str(exc)))
        except Exception as exc:  # an area's failure must not take the others down
            log.exception("oversight area %s failed for %s", area.key, period.label)
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            results.append(AreaResult(area, None, error=f"{area.title}: failed ({reason})"))
        else:
            spent = time.perf_counter() - started
            if spent > _SLOW_SECONDS:
                log.info("oversight area %s for %s took %.1f s", area.key, period.label, spent)
            results.append(AreaResult(area, summary, headlines, parts, seconds=spent))
        if on_area is not None:
            on_area(results[-1])
    return results
