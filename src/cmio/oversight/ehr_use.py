"""Physician EHR use for a reporting period: per clinician, department and month, the
organization's distribution of each metric across clinicians, and its outliers.

Built on :mod:`cmio.measures.ehr_use` (the Sinsky et al. core measures, JAMIA 2020,
https://doi.org/10.1093/jamia/ocz223, from the store's AuditEvents, schedules and
orders: what ``cmio ehr-use`` computes), with two more figures computed from the same
sessionized slices (see ``docs/measures.md``, "Physician EHR use"):

* **Order-Time8**: hours of slices whose activity is ``orders`` per 8 hours of scheduled
  patient time.
* **Pajama time** (after Epic Signal, as studied by Saag et al., J Gen Intern Med
  2019): hours of slices whose event starts on a Saturday or Sunday, or on a weekday
  before 07:00 or from 17:30 (the clock time written in the event's timestamp), per 8
  hours of scheduled patient time.

Distributions and outliers are over clinicians with scheduled patient time in the
period (per-8 figures need it), with the rule of :mod:`cmio.oversight.stats`. The
store's own audit records are counted once copied as AuditEvents (``cmio audit index``
or ``cmio ehr-use``); the summary reads, never writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cmio.measures.ehr_use import SessionRules, SqlEngine, compute_ehr_use
from cmio.measures.ehr_use.engine import Period
from cmio.measures.ehr_use.sql import metrics_select
from cmio.oversight.period import ReportingPeriod
from cmio.oversight.stats import Distribution, distribution, percent_rank

if TYPE_CHECKING:
    from cmio.oversight.headline import Headline
    from cmio.reports.model import Section

__all__ = [
    "EXTRA_SQL",
    "METRICS",
    "EhrUseSummary",
    "MetricInfo",
    "Outlier",
    "PeerFigure",
    "UseFigures",
    "ehr_use_summary",
    "headlines",
    "practitioner_names",
    "report_sections",
]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One EHR-use figure.

    Attributes:
        key: the column name. label: its short name. unit: ``h`` (hours per 8 h of
            scheduled patient time) or ``share`` (0-1). description: what it measures.
        higher_is_worse: the unfavourable direction (burden up, teamwork down).
    """

    key: str
    label: str
    unit: str
    description: str
    higher_is_worse: bool = True

    def format(self, value: float | None) -> str:
        """``6.4 h`` or ``42%``; an em dash for no value."""
        if value is None:
            return "\u2014"
        return f"{value:.2f} h" if self.unit == "h" else f"{value * 100:.0f}%"


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("ehr_time8", "EHR-Time8", "h", "EHR hours per 8 h of scheduled patient time"),
    MetricInfo("wow8", "WOW8", "h", "work outside work: EHR hours outside scheduled time per 8 h"),
    MetricInfo("pajama_time8", "Pajama time", "h", "EHR hours on weekday evenings, nights "
               "(before 07:00, from 17:30) and weekends per 8 h"),
    MetricInfo("inbox_time8", "Inbox-Time8", "h", "inbox hours per 8 h"),
    MetricInfo("note_time8", "Note-Time8", "h", "note-writing hours per 8 h"),
    MetricInfo("order_time8", "Order-Time8", "h", "order-entry hours per 8 h"),
    MetricInfo("prescription_time8", "Prescription-Time8", "h", "hours on prescriptions per 8 h"),
    MetricInfo("teamwork_orders", "Teamwork for orders", "share",
               "share of orders entered by the team", higher_is_worse=False),
    MetricInfo("undivided_attention", "Undivided attention", "share",
               "share of scheduled patient time without EHR activity", higher_is_worse=False),
)  # fmt: skip
"""The figures shown, in order (the seven Sinsky measures plus order and pajama time)."""

_BY_KEY = {m.key: m for m in METRICS}
_EXTRA = ("order_s", "pajama_s")

EXTRA_SQL = """
WITH ev AS (
  SELECT user_id, start_ts, ROW_NUMBER() OVER (PARTITION BY user_id
    ORDER BY t0, t1, activity_code, object_type, objects_known, start_ts) AS rn
  FROM ehr_ev
)
SELECT s.user_id, s.month,
  CAST(SUM(CASE WHEN s.activity_code = 'orders' THEN s.b - s.a ELSE 0 END) AS BIGINT) AS order_s,
  CAST(SUM(CASE WHEN DAYOFWEEK(CAST(SUBSTRING(ev.start_ts, 1, 10) AS DATE)) IN (0, 6)
             OR SUBSTRING(ev.start_ts, 12, 5) < '07:00' OR SUBSTRING(ev.start_ts, 12, 5) >= '17:30'
           THEN s.b - s.a ELSE 0 END) AS BIGINT) AS pajama_s
FROM ehr_slices AS s JOIN ev ON ev.user_id = s.user_id AND ev.rn = s.slice_no
GROUP BY s.user_id, s.month
ORDER BY s.user_id, s.month
"""
"""Order and pajama seconds per clinician and month, from the engine's sessionized slices
(each slice joined back to its event's timestamp by the engine's own event order)."""


@dataclass(frozen=True, slots=True)
class UseFigures:
    """The figures of one clinician, department, month or the whole organization.

    Attributes:
        key: practitioner id, department id, ``YYYY-MM`` or ``organization``.
        label: the name people read. department, specialty: for clinicians.
        scheduled_hours: scheduled patient hours. ehr_hours: active EHR hours.
        values: each :data:`METRICS` key -> its value (None: not computable).
    """

    key: str
    label: str
    scheduled_hours: float
    ehr_hours: float
    values: Mapping[str, float | None]
    department: str = ""
    specialty: str = ""

    def value(self, metric: str) -> float | None:
        """One figure (None when missing)."""
        return self.values.get(metric)


@dataclass(frozen=True, slots=True)
class Outlier:
    """A clinician flagged on one figure (:meth:`cmio.oversight.stats.Distribution.flag`)."""

    practitioner_id: str
    name: str
    department: str
    metric: MetricInfo
    value: float
    flag: str
    rule: str


@dataclass(frozen=True, slots=True)
class PeerFigure:
    """One clinician's figure against their peers.

    Attributes:
        metric: the figure. value: theirs. peer_median: the organization's median
            clinician. percentile_rank: PERCENT_RANK among clinicians (0-1).
        peers: clinicians with a value. specialty_median, specialty_rank,
            specialty_peers: the same within their specialty (from the engine's peers).
        flag: ``outlier``, ``high``, ``low`` or empty.
    """

    metric: MetricInfo
    value: float | None
    peer_median: float | None
    percentile_rank: float | None
    peers: int
    specialty_median: float | None = None
    specialty_rank: float | None = None
    specialty_peers: int = 0
    flag: str = ""


@dataclass(frozen=True, slots=True)
class EhrUseSummary:
    """Physician EHR use over a reporting period.

    Attributes:
        period: the period. timeout_s: the session inactivity timeout used.
        organization: pooled figures of clinicians with scheduled time.
        months: the organization per month. clinicians: every clinician with activity.
        departments: pooled per department. clinician_months, department_months:
            monthly figures by practitioner id / department id.
        distributions: per metric, across clinicians with scheduled time.
        specialty_peers: practitioner id -> metric -> (rank, peers, specialty median).
        outliers: flagged clinicians, worst first.
    """

    period: ReportingPeriod
    timeout_s: int
    organization: UseFigures
    months: tuple[UseFigures, ...]
    clinicians: tuple[UseFigures, ...]
    departments: tuple[UseFigures, ...]
    clinician_months: Mapping[str, tuple[UseFigures, ...]]
    department_months: Mapping[str, tuple[UseFigures, ...]]
    distributions: Mapping[str, Distribution]
    specialty_peers: Mapping[str, Mapping[str, tuple[float, int, float | None]]]
    outliers: tuple[Outlier, ...] = field(default=())

    @property
    def measured(self) -> tuple[UseFigures, ...]:
        """Clinicians with scheduled patient time (those the distributions cover)."""
        return tuple(c for c in self.clinicians if c.scheduled_hours > 0)

    def clinician(self, practitioner_id: str) -> UseFigures | None:
        """One clinician's figures (None: no EHR activity or schedule in the period)."""
        return next((c for c in self.clinicians if c.key == practitioner_id), None)

    def compared(self, practitioner_id: str) -> list[PeerFigure]:
        """A clinician's figures against the organization's clinicians and their specialty."""
        me = self.clinician(practitioner_id)
        out: list[PeerFigure] = []
        for metric in METRICS:
            value = me.value(metric.key) if me is not None else None
            values = [v for c in self.measured if (v := c.value(metric.key)) is not None]
            spec = self.specialty_peers.get(practitioner_id, {}).get(metric.key)
            dist = self.distributions[metric.key]
            out.append(
                PeerFigure(
                    metric,
                    value,
                    dist.median,
                    percent_rank(values, value) if value is not None and values else None,
                    len(values),
                    spec[2] if spec else None,
                    spec[0] if spec else None,
                    spec[1] if spec else 0,
                    dist.flag(value),
                )
            )
        return out


def practitioner_names(source: Any) -> dict[str, str]:
    """Practitioner id -> ``Given Family, SUFFIX`` (the first HumanName)."""
    import cmio.views

    view = {
        "resourceType": "ViewDefinition", "resource": "Practitioner", "status": "active",
        "select": [{"column": [
            {"name": "id", "path": "id"},
            {"name": "given", "path": "name.first().given.first()"},
            {"name": "family", "path": "name.first().family"},
            {"name": "suffix", "path": "name.first().suffix.first()"},
        ]}],
    }  # fmt: skip
    names: dict[str, str] = {}
    for row in cmio.views.DuckDbRunner().run(view, source).to_pylist():
        text = " ".join(str(p) for p in (row["given"], row["family"]) if p)
        if row["suffix"]:
            text = f"{text}, {row['suffix']}"
        names[str(row["id"])] = text or f"Practitioner/{row['id']}"
    return names


def _per8(seconds: float, scheduled: float) -> float | None:
    return 8.0 * seconds / scheduled if scheduled > 0 else None


def _figures(
    row: Mapping[str, Any], key: str, label: str, extra: tuple[float, float], **more: str
) -> UseFigures:
    scheduled = float(row.get("sched_s") or 0)
    values: dict[str, float | None] = {m.key: row.get(m.key) for m in METRICS}
    values["order_time8"] = _per8(extra[0], scheduled)
    values["pajama_time8"] = _per8(extra[1], scheduled)
    return UseFigures(
        key, label, scheduled / 3600, float(row.get("ehr_s") or 0) / 3600,
        {k: (None if v is None or v != v else float(v)) for k, v in values.items()}, **more,
    )  # fmt: skip


class _Extra:
    """Order and pajama seconds summed per clinician, clinician-month and, for the pool
    (clinicians with scheduled time), per department, department-month, month and in all."""

    def __init__(
        self, rows: Iterable[Mapping[str, Any]], pool: set[str], dept_of: Mapping[str, str]
    ) -> None:
        self.sums: dict[tuple[str, ...], tuple[float, float]] = {}
        for r in rows:
            user, month = str(r["user_id"]), str(r["month"])
            both = (int(r["order_s"] or 0), int(r["pajama_s"] or 0))
            keys = [("user", user), ("user-month", user, month)]
            if user in pool:
                dept = dept_of.get(user, "")
                keys += [("dept", dept), ("dept-month", dept, month), ("month", month), ("all",)]
            for key in keys:
                old = self.sums.get(key, (0.0, 0.0))
                self.sums[key] = (old[0] + both[0], old[1] + both[1])

    def __call__(self, *key: str) -> tuple[float, float]:
        return self.sums.get(key, (0.0, 0.0))


def ehr_use_summary(
    repository: Any,
    period: ReportingPeriod,
    *,
    rules: SessionRules | None = None,
    progress: Callable[[str], None] | None = None,
) -> EhrUseSummary:
    """Compute the period's EHR-use summary on DuckDB (figures of Sinsky et al.,
    https://doi.org/10.1093/jamia/ocz223, plus order and pajama time).

    Args:
        repository: the store, or any source :func:`cmio.measures.ehr_use.compute_ehr_use`
            reads (an NDJSON/Parquet folder, a list of resources).
        period: the reporting period.
        rules: the session rules (default: a 300 s inactivity timeout).
        progress: called with the name of each step.

    Returns:
        The :class:`EhrUseSummary`.
    """
    rules = rules or SessionRules()
    span = Period(period.start, period.end)
    with SqlEngine("duckdb") as engine:
        tables = compute_ehr_use(repository, span, engine=engine, rules=rules, progress=progress)
        extra_rows = engine.query(EXTRA_SQL).to_pylist()
        org = engine.query(metrics_select((), "ehr_pool")).to_pylist()[0]
        keys = ("department_id", "department", "month")
        dept_months = engine.query(metrics_select(keys, "ehr_pool")).to_pylist()
    names = practitioner_names(repository)
    people = tables["clinicians"].to_pylist()
    pool = {str(r["user_id"]) for r in people if (r["sched_s"] or 0) > 0}
    extra = _Extra(extra_rows, pool, {str(r["user_id"]): r["department_id"] or "" for r in people})
    clinicians = []
    for r in people:
        user = str(r["user_id"])
        label = names.get(user, f"Practitioner/{user}")
        more = {"department": r["department"] or "", "specialty": r["specialty"] or ""}
        clinicians.append(_figures(r, user, label, extra("user", user), **more))
    by_user: dict[str, list[UseFigures]] = defaultdict(list)
    for r in tables["clinician_month"].to_pylist():
        user, month = str(r["user_id"]), str(r["month"])
        by_user[user].append(_figures(r, month, month, extra("user-month", user, month)))
    departments = []
    for r in tables["departments"].to_pylist():
        dept = r["department_id"] or ""
        label = r["department"] or "(no department)"
        departments.append(_figures(r, dept, label, extra("dept", dept)))
    by_dept: dict[str, list[UseFigures]] = defaultdict(list)
    for r in sorted(dept_months, key=lambda r: (r["department_id"] or "", r["month"])):
        dept, month = r["department_id"] or "", str(r["month"])
        by_dept[dept].append(_figures(r, month, month, extra("dept-month", dept, month)))
    months = tuple(
        _figures(r, str(r["month"]), str(r["month"]), extra("month", str(r["month"])))
        for r in tables["months"].to_pylist()
    )
    organization = _figures(org, "organization", "Organization", extra("all"))
    measured = [c for c in clinicians if c.scheduled_hours > 0]
    dists = {
        m.key: distribution((c.value(m.key) for c in measured), higher_is_worse=m.higher_is_worse)
        for m in METRICS
    }
    peers: dict[str, dict[str, tuple[float, int, float | None]]] = defaultdict(dict)
    for r in tables["peers"].to_pylist():
        peers[str(r["user_id"])][str(r["metric"])] = (
            float(r["percentile_rank"]), int(r["peers"]), r["p50"],
        )  # fmt: skip
    return EhrUseSummary(
        period, rules.timeout_s, organization, months, tuple(clinicians), tuple(departments),
        {k: tuple(v) for k, v in by_user.items()}, {k: tuple(v) for k, v in by_dept.items()},
        dists, {k: dict(v) for k, v in peers.items()}, _outliers(measured, dists),
    )  # fmt: skip


def _outliers(
    measured: Iterable[UseFigures], dists: Mapping[str, Distribution]
) -> tuple[Outlier, ...]:
    found: list[Outlier] = []
    for clinician in measured:
        for metric in METRICS:
            value, dist = clinician.value(metric.key), dists[metric.key]
            flag = dist.flag(value)
            if flag and value is not None:
                found.append(
                    Outlier(clinician.key, clinician.label, clinician.department, metric, value,
                            flag, dist.rule(flag))
                )  # fmt: skip
    order = {"outlier": 0, "high": 1, "low": 1}
    found.sort(key=lambda o: (order[o.flag], METRICS.index(o.metric), o.name))
    return tuple(found)


def headlines(summary: EhrUseSummary) -> list[Headline]:
    """Tiles of the executive overview: EHR-Time8, WOW8, Inbox-Time8 and the clinicians
    flagged (see :mod:`cmio.oversight.ehr_use_report`)."""
    from cmio.oversight.ehr_use_report import ehr_use_headlines

    return ehr_use_headlines(summary)


def report_sections(summary: EhrUseSummary) -> list[Section]:
    """The steering-committee report's EHR-use section."""
    from cmio.oversight.ehr_use_report import ehr_use_sections

    return ehr_use_sections(summary)
