"""Quality measures for a reporting period: rates against targets, trends, strata, care gaps.

:func:`quality_summary` evaluates every built-in proportion eCQM (CMS122, CMS125, CMS130,
CMS165, CMS2) with the measure framework (:mod:`cmio.measures.runner`) on one DuckDB
connection: the measure tables are materialized once, then each window is one
evaluation producing the members table (one row per initial-population patient with
their populations, care-gap flag and stratum of every stratifier); rates, strata and
gap lists are group-bys of that table, never re-evaluations.

* **Rate**: the framework's proportion score, (NUM - NUMEX) / (DEN - DENEX - DENEXCEP)
  (https://hl7.org/fhir/R4/measure-definitions.html#Measure.scoring).
* **Target** (:data:`TARGETS`): the organization's goal per measure. For an inverse
  measure (``improvement: decrease``, CMS122 poor glycemic control) the rate must be at
  or below it, else at or above. Status: ``good`` when met, ``warn`` within
  :data:`WARN_MARGIN` of it, ``bad`` beyond.
* **Trend**: the cumulative (period-to-date) rate at month ends: the measure evaluated
  from the period's first day to that month's last day, the last point being the
  period's rate; every month for periods of up to six months, quarter ends beyond
  (:func:`trend_months`: each point is one evaluation, about a second on the demo data).
* **Previous**: the same measures over :meth:`ReportingPeriod.previous` (the delta).
* **Strata**: by attributed clinician, department, and the equity strata sex, age band,
  race, ethnicity (US Core OMB categories) and payer (docs/measures.md, "Attribution
  and stratifiers"); each stratifier's strata partition the initial population.
* **Care gaps**: the patients in the denominator (not excluded or excepted) who miss
  the numerator, or, for an inverse measure, who are in it
  (:mod:`cmio.measures.caregaps`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType

import pyarrow as pa

from cmio.measures import MeasureDefinition, MeasureResult, MeasureRunner, Period, builtin_measures
from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.quality_strata import (
    EQUITY_STRATIFIERS,
    STRATIFIER_LABELS,
    STRATIFIERS,
    Counts,
    Stratum,
    counts_of,
    flag,
    practitioner_names,
    strata_of,
    stratum_label,
)
from cmio.oversight.shared import SharedWork
from cmio.reports.model import Section
from cmio.store.base import Repository
from cmio.terminology.service import TerminologyService

__all__ = [
    "EQUITY_STRATIFIERS",
    "SHORT_NAMES",
    "STRATIFIERS",
    "STRATIFIER_LABELS",
    "TARGETS",
    "WARN_MARGIN",
    "CareGap",
    "Counts",
    "MeasureQuality",
    "PreparedRunner",
    "QualitySummary",
    "Stratum",
    "TrendPoint",
    "counts_of",
    "delta_text",
    "headlines",
    "practitioner_names",
    "previous_headlines",
    "quality_summary",
    "report_sections",
    "strata_of",
    "trend_months",
]

TARGETS: Mapping[str, float] = MappingProxyType(
    {"CMS122": 0.20, "CMS125": 0.70, "CMS130": 0.70, "CMS165": 0.70, "CMS2": 0.70}
)
"""The organization's goal per measure (a rate, 0-1): CMS122 (poor HbA1c control, lower
is better) at most 20%; breast and colorectal cancer screening, blood pressure control
and depression screening at least 70%. Pass ``targets`` to :func:`quality_summary` to
use others; a measure without a target gets :data:`DEFAULT_TARGET`."""
DEFAULT_TARGET = 0.70
SHORT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "CMS122": "Diabetes: HbA1c poor control (> 9%)",
        "CMS125": "Breast cancer screening",
        "CMS130": "Colorectal cancer screening",
        "CMS165": "Controlling high blood pressure",
        "CMS2": "Depression screening and follow-up",
    }
)
"""Short names of the built-in measures for tiles (else the measure's title)."""
WARN_MARGIN = 0.05
"""How close to its target (in rate units: 0.05 = 5 points) a rate is ``warn``."""


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The cumulative rate from the period's start to the end of ``month`` (``YYYY-MM``)."""

    month: str
    end: date
    counts: Counts


@dataclass(frozen=True, slots=True)
class CareGap:
    """A patient with an open gap: ``since`` is the day of the last event that counted
    (empty when there never was one); clinician and department are the attribution."""

    patient_id: str
    since: str
    clinician: str
    clinician_label: str
    department: str


@dataclass(frozen=True, slots=True)
class MeasureQuality:
    """One measure over the period (see the module docstring)."""

    id: str
    identifier: str
    title: str
    name: str
    inverse: bool
    target: float
    missing: str
    counts: Counts
    previous: Counts | None
    trend: tuple[TrendPoint, ...]
    strata: tuple[Stratum, ...]
    gaps: tuple[CareGap, ...]

    @property
    def rate(self) -> float | None:
        """The period's rate."""
        return self.counts.rate

    @property
    def delta(self) -> float | None:
        """The rate minus the previous period's (None when either is missing)."""
        before = self.previous.rate if self.previous is not None else None
        return None if self.rate is None or before is None else self.rate - before

    @property
    def status(self) -> str:
        """``good`` (target met), ``warn`` (within :data:`WARN_MARGIN`), ``bad``, or ``""``."""
        if self.rate is None:
            return ""
        shortfall = self.rate - self.target if self.inverse else self.target - self.rate
        if shortfall <= 1e-9:
            return "good"
        return "warn" if shortfall <= WARN_MARGIN + 1e-9 else "bad"

    @property
    def target_text(self) -> str:
        """``target <= 20%`` or ``target >= 70%``."""
        return f"target {'<=' if self.inverse else '>='} {self.target * 100:.0f}%"

    def strata_of(self, stratifier: str) -> tuple[Stratum, ...]:
        """The strata of one stratifier, largest initial population first."""
        return tuple(s for s in self.strata if s.stratifier == stratifier)


@dataclass(frozen=True, slots=True)
class QualitySummary:
    """Every measure over a period, with the previous period for the deltas.

    Attributes:
        period: the reporting period. previous: the period before it.
        measures: one per measure, in the order given.
        seconds: how long the evaluation took.
    """

    period: ReportingPeriod
    previous: ReportingPeriod
    measures: tuple[MeasureQuality, ...]
    seconds: float

    def measure(self, measure_id: str) -> MeasureQuality:
        """One measure by id (case-insensitive).

        Raises:
            KeyError: not a measure of the summary.
        """
        for found in self.measures:
            if found.id.lower() == measure_id.lower():
                return found
        raise KeyError(measure_id)


class PreparedRunner(MeasureRunner):
    """The runner the quality summary evaluates its windows with: the measure framework's
    runner materializes the tables once and keeps the value-set expansions across
    evaluations (they do not depend on the period)."""


_Runner = PreparedRunner  # the earlier private name


def _gaps(members: pa.Table, labels: Mapping[str, str]) -> tuple[CareGap, ...]:
    chosen = members.filter(flag(members, "care_gap"))
    out = []
    for row in chosen.to_pylist():
        clinician = str(row.get("strat_clinician") or "unknown")
        out.append(
            CareGap(
                str(row["patient_id"]),
                str(row.get("gap_since") or ""),
                clinician,
                stratum_label("clinician", clinician, labels),
                str(row.get("strat_department") or "unknown"),
            )
        )
    out.sort(key=lambda g: (g.since, g.patient_id))
    return tuple(out)


def trend_months(period: ReportingPeriod, granularity: str = "auto") -> list[str]:
    """The months whose ends are trend points: every month (``month``), the months ending
    a quarter and the period's last month (``quarter``), or ``auto``: monthly for periods
    of up to six months, quarterly beyond (one evaluation per point)."""
    months = period.months()
    if granularity == "auto":
        granularity = "month" if len(months) <= 6 else "quarter"
    if granularity == "month":
        return months
    if granularity == "quarter":
        return [m for m in months if int(m[5:]) % 3 == 0 or m == months[-1]]
    raise ValueError(f"trend granularity {granularity!r}: expected auto, month or quarter")


def _windows(period: ReportingPeriod, months: Sequence[str]) -> list[tuple[str, Period]]:
    """Period-to-date windows ending at each month's end (the last: the whole period)."""
    out = []
    for month in months:
        year, number = int(month[:4]), int(month[5:])
        following = date(year + (number == 12), number % 12 + 1, 1)
        end = min(following - timedelta(days=1), period.end)
        out.append((month, Period(period.start, end)))
    return out


def quality_summary(
    repository: Repository | str | Path,
    period: ReportingPeriod,
    terminology: TerminologyService | None = None,
    *,
    measures: Sequence[MeasureDefinition] | None = None,
    targets: Mapping[str, float] | None = None,
    trend: str = "auto",
    shared: SharedWork | None = None,
) -> QualitySummary:
    """Evaluate the quality measures over a period (see the module docstring).

    Args:
        repository: the store (or a Bulk NDJSON/Parquet folder).
        period: the reporting period.
        terminology: expands the measures' value sets (default: a bare service).
        measures: the proportion measures (default: the built-in ones).
        targets: goals by measure id (default: :data:`TARGETS`).
        trend: the trend's points (:func:`trend_months`): ``auto``, ``month``, ``quarter``,
            or ``none`` (the period's rate only).
        shared: work shared with the other summaries (:class:`SharedWork`): a window
            already evaluated (by another summary, or as another period's previous
            period) is not evaluated again. Default: a private engine for this call.
    """
    started = time.perf_counter()
    chosen = [
        m
        for m in (measures if measures is not None else builtin_measures().values())
        if m.scoring == "proportion"
    ]
    goals = TARGETS if targets is None else targets
    labels = practitioner_names(repository)
    previous = period.previous()
    months = period.months()[-1:] if trend == "none" else trend_months(period, trend)
    work = shared
    if work is None or work.repository is not repository:
        work = SharedWork(repository, terminology)
    try:
        # the whole period first: the figures pages show (the cost summary shares them)
        windows = _windows(period, months)
        current_results = work.evaluate(chosen, windows[-1][1])
        before = work.evaluate(chosen, Period(previous.start, previous.end))
        by_window: list[tuple[str, date, list[MeasureResult]]] = []
        for month, window in windows[:-1]:
            by_window.append((month, window.end, work.evaluate(chosen, window)))
        by_window.append((windows[-1][0], windows[-1][1].end, current_results))
    finally:
        if work is not shared:
            work.close()
    current = by_window[-1][2]
    out = []
    for index, measure in enumerate(chosen):
        members = current[index].members
        points = tuple(
            TrendPoint(month, end, counts_of(results[index].members))
            for month, end, results in by_window
        )
        out.append(
            MeasureQuality(
                id=measure.id,
                identifier=measure.identifier or measure.id,
                title=measure.title or measure.id,
                name=SHORT_NAMES.get(measure.id, measure.title or measure.id),
                inverse=measure.improvement == "decrease",
                target=float(goals.get(measure.id, DEFAULT_TARGET)),
                missing=measure.gap.missing if measure.gap else measure.title,
                counts=counts_of(members),
                previous=counts_of(before[index].members),
                trend=points if trend != "none" else (),
                strata=strata_of(members, STRATIFIERS, labels),
                gaps=_gaps(members, labels),
            )
        )
    return QualitySummary(period, previous, tuple(out), time.perf_counter() - started)


def _pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{value * 100:.1f}%"


def delta_text(measure: MeasureQuality, previous: ReportingPeriod) -> str:
    """``+1.3 pts vs 2024`` (or ``no rate for 2024``)."""
    if measure.delta is None:
        return f"no rate for {previous.label}"
    return f"{measure.delta * 100:+.1f} pts vs {previous.label}"


def headlines(summary: QualitySummary) -> list[Headline]:
    """One tile per measure for the executive overview: rate, target and delta, status,
    the trend (rates in percent, period to date), linking to the measure's page."""
    out = []
    for m in summary.measures:
        out.append(
            Headline(
                area="quality",
                label=f"{m.name} ({m.id})",
                value=_pct(m.rate),
                detail=f"{m.target_text} \u00b7 {delta_text(m, summary.previous)}",
                status=m.status,
                href=f"/quality/{m.id}?period={summary.period.label}",
                trend=tuple(
                    (p.month, round(p.counts.rate * 100, 1))
                    for p in m.trend
                    if p.counts.rate is not None
                ),
            )
        )
    return out


def previous_headlines(summary: QualitySummary) -> list[Headline]:
    """The headlines of the previous period, as :func:`headlines` of its own summary
    would show them (same labels, rates over the same window), from this summary's
    previous-period counts: the steering report compares against them without
    evaluating the previous period's trend and its own previous period."""
    out = []
    for m in summary.measures:
        rate = m.previous.rate if m.previous is not None else None
        out.append(Headline(area="quality", label=f"{m.name} ({m.id})", value=_pct(rate)))
    return out


def report_sections(summary: QualitySummary) -> list[Section]:
    """The steering-committee report's quality sections (:mod:`cmio.reports`): the rates
    against targets with trends, and the rates by department and equity strata."""
    from cmio.oversight.quality_report import quality_sections

    return quality_sections(summary)
