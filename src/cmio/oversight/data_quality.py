"""Data quality for the oversight pages: a score per resource type and source system,
and the worst-kept standards, from the standards-adherence measures
(:mod:`cmio.measures.adherence`).

The score is the adherence measures' own: 100 x the mean of the available shares of
(1) coded elements with a coding in the organization's standard systems (labs and
observations in LOINC, problems in SNOMED CT or ICD-10-CM, medications in RxNorm ...),
(2) codes valid in their code system, (3) required elements present (identifiers,
subjects, R4 minimum cardinalities, https://hl7.org/fhir/R4/conformance-rules.html), and
(4) Quantity units conformant to UCUM (https://ucum.org/ucum). Per resource type and
per source the shares are pooled over the other key (numerators and denominators
summed), exactly as the measures' overall score pools over everything.

The coding share by month (the trend) is :mod:`cmio.oversight.coding_trend`'s.

Each check is a "rule" here: an element's standard coding, an element's presence, valid
codes, UCUM units per resource type; the worst are those failing most often.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cmio.oversight.coding_trend import DATES, coding_months, coding_trend, in_period
from cmio.oversight.headline import Headline
from cmio.oversight.period import ReportingPeriod
from cmio.reports import Metric, MetricRow, Paragraph, Section, Table
from cmio.store.base import Repository

if TYPE_CHECKING:
    from cmio.oversight.shared import SharedWork
    from cmio.terminology.service import TerminologyService

__all__ = [
    "DATES",
    "HREF",
    "PARTS",
    "CheckRow",
    "DataQualitySummary",
    "ScoreRow",
    "coding_months",
    "coding_trend",
    "data_quality_summary",
    "headlines",
    "pooled_scores",
    "report_sections",
    "summary_from_tables",
]

HREF = "/workbench/data-quality"
PARTS = ("coding", "validity", "completeness", "ucum")
"""The score's shares, in the adherence measures' order."""


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """A score with its shares (None: nothing to measure for that share)."""

    key: str
    resources: int
    coding: float | None
    validity: float | None
    completeness: float | None
    ucum: float | None
    score: float | None


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One check ("rule") over the store: how many items it applies to and fail it."""

    rule: str
    kind: str
    resource_type: str
    checked: int
    failing: int

    @property
    def share(self) -> float:
        """Share passing (0..1)."""
        return 1 - self.failing / self.checked if self.checked else 1.0


@dataclass(frozen=True, slots=True)
class DataQualitySummary:
    """The store's data quality.

    Attributes:
        period: the reporting period (the score covers every current resource).
        overall: the score over everything (equals the measures' ``*`` row).
        by_type, by_source: pooled per resource type and per source system.
        checks: every check, worst (most failing) first.
        duplicates: suspected duplicate patient pairs.
        trend: ``(YYYY-MM, coded elements, in a standard system)`` by the month of each
            resource's clinical date, within the period
            (:func:`~cmio.oversight.coding_trend.coding_trend`).
    """

    period: ReportingPeriod
    overall: ScoreRow
    by_type: tuple[ScoreRow, ...]
    by_source: tuple[ScoreRow, ...]
    checks: tuple[CheckRow, ...]
    duplicates: int
    trend: tuple[tuple[str, int, int], ...] = ()


def _pooled(key: str, sums: Mapping[str, list[float]], resources: int) -> ScoreRow:
    shares = {p: (sums[p][0] / sums[p][1] if sums[p][1] else None) for p in PARTS}
    present = [v for v in shares.values() if v is not None]
    score = 100 * sum(present) / len(present) if present else None
    return ScoreRow(key, resources, shares["coding"], shares["validity"],
                    shares["completeness"], shares["ucum"], score)  # fmt: skip


def pooled_scores(tables: Mapping[str, Any], by: str) -> list[ScoreRow]:
    """Scores pooled by ``resource_type``, ``source`` or ``*`` (everything) from the
    adherence output tables (pyarrow tables ``coding``, ``codes``, ``required``,
    ``units``)."""
    parts: dict[str, tuple[str, str, str]] = {
        "coding": ("coding", "standard_elements", "elements"),
        "validity": ("codes", "valid", ""),
        "completeness": ("required", "", "resources"),
        "ucum": ("units", "conformant", "quantities"),
    }
    sums: dict[str, dict[str, list[float]]] = {}
    for part, (table, num, den) in parts.items():
        for row in tables[table].to_pylist():
            key = "*" if by == "*" else str(row[by])
            cell = sums.setdefault(key, {p: [0.0, 0.0] for p in PARTS})[part]
            if part == "validity":
                n, d = row["valid"], row["valid"] + row["invalid"] + row["deprecated"]
            elif part == "completeness":
                n, d = row["resources"] - row["missing"], row["resources"]
            else:
                n, d = row[num], row[den]
            cell[0] += n or 0
            cell[1] += d or 0
    counts = _resource_counts(tables["required"].to_pylist(), by)
    return [_pooled(k, sums[k], counts.get(k, 0)) for k in sorted(sums)]


def _resource_counts(required: Iterable[Mapping[str, Any]], by: str) -> dict[str, int]:
    """Resources per key: the largest ``resources`` of any required element of a
    (type, source), summed over the key's (type, source) pairs."""
    per_pair: dict[tuple[str, str], int] = {}
    for row in required:
        pair = (str(row["resource_type"]), str(row["source"]))
        per_pair[pair] = max(per_pair.get(pair, 0), int(row["resources"]))
    out: dict[str, int] = {}
    for (rtype, source), n in per_pair.items():
        key = "*" if by == "*" else rtype if by == "resource_type" else source
        out[key] = out.get(key, 0) + n
    return out


def _checks(tables: Mapping[str, Any]) -> list[CheckRow]:
    cells: dict[tuple[str, str, str], list[int]] = {}

    def add(rule: str, kind: str, rtype: str, checked: int, failing: int) -> None:
        cell = cells.setdefault((rule, kind, rtype), [0, 0])
        cell[0] += checked
        cell[1] += failing

    for r in tables["coding"].to_pylist():
        add(f"{r['element']} in a standard code system", "coding", r["resource_type"],
            r["elements"], r["elements"] - r["standard_elements"])  # fmt: skip
    for r in tables["required"].to_pylist():
        add(f"{r['resource_type']}.{r['element']} present", "completeness", r["resource_type"],
            r["resources"], r["missing"])  # fmt: skip
    for r in tables["codes"].to_pylist():
        checked = r["valid"] + r["invalid"] + r["deprecated"]
        add(f"{r['resource_type']} codes valid", "validity", r["resource_type"], checked,
            r["invalid"] + r["deprecated"])  # fmt: skip
    for r in tables["units"].to_pylist():
        add(f"{r['resource_type']} units in UCUM", "ucum", r["resource_type"], r["quantities"],
            r["quantities"] - r["conformant"])  # fmt: skip
    rows = [CheckRow(rule, kind, rtype, c, f) for (rule, kind, rtype), (c, f) in cells.items()]
    return sorted(rows, key=lambda c: (-c.failing, c.share, c.rule))


def data_quality_summary(
    repository: Repository,
    period: ReportingPeriod,
    terminology: TerminologyService | None = None,
    shared: SharedWork | None = None,
) -> DataQualitySummary:
    """Run the adherence measures over the store and summarize them.

    Args:
        repository: the FHIR store (every current resource of the standards' types).
        period: the reporting period (labels the summary; the measures read the store
            as it is).
        terminology: checks code validity (default: the core terminology over the store).
        shared: work shared across periods (the adherence tables and the coding counts
            per month do not depend on the period: computed once); None: computed here.
    """
    from cmio.measures.adherence import Standards

    plan = Standards()
    if shared is not None and shared.repository is repository:
        tables = shared.once(
            "data-quality:tables", lambda: _adherence_tables(repository, terminology, plan)
        )
        months = shared.once(
            "data-quality:months", lambda: coding_months(repository, plan.elements)
        )
    else:
        tables = _adherence_tables(repository, terminology, plan)
        months = coding_months(repository, plan.elements)
    summary = summary_from_tables(tables, period)
    return replace(summary, trend=tuple(in_period(months, period)))


def _adherence_tables(
    repository: Repository, terminology: TerminologyService | None, plan: Any
) -> Mapping[str, Any]:
    from cmio.measures.adherence import data_quality, read_adherence
    from cmio.measures.ehr_use import SqlEngine

    service = terminology
    if service is None:
        from cmio.terminology.factory import open_terminology

        service = open_terminology(repository, None)
    try:
        inputs = read_adherence(repository, plan)
        with SqlEngine("duckdb") as sql:
            tables: Mapping[str, Any] = data_quality(inputs, sql, service.resources, plan)
    finally:
        if terminology is None:
            service.close()
    return tables


def summary_from_tables(tables: Mapping[str, Any], period: ReportingPeriod) -> DataQualitySummary:
    """The summary of the adherence measures' output tables
    (:func:`cmio.measures.adherence.data_quality`)."""
    pooled = pooled_scores(tables, "*")  # empty when the store holds nothing to measure
    overall = pooled[0] if pooled else ScoreRow("*", 0, None, None, None, None, None)
    return DataQualitySummary(
        period,
        overall,
        tuple(pooled_scores(tables, "resource_type")),
        tuple(pooled_scores(tables, "source")),
        tuple(_checks(tables)),
        tables["duplicates"].num_rows,
    )


def _status(score: float | None) -> str:
    if score is None:
        return ""
    return "good" if score >= 95 else "warn" if score >= 85 else "bad"


def headlines(summary: DataQualitySummary) -> list[Headline]:
    """The executive overview's data-quality tile (drills down to the page)."""
    score = summary.overall.score
    worst = next((c for c in summary.checks if c.failing), None)
    detail = f"worst: {worst.rule} ({worst.failing:,} failing)" if worst else "every check passes"
    return [
        Headline(
            "data-quality",
            "Data-quality score",
            "\u2014" if score is None else f"{score:.1f}",
            detail,
            _status(score),
            HREF,
            tuple((m, 100 * ok / n) for m, n, ok in summary.trend if n),
        )
    ]


def _share(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:.1%}"


def _score(value: float | None) -> str:
    return "\u2014" if value is None else f"{value:.1f}"


def report_sections(summary: DataQualitySummary) -> list[Section]:
    """The steering-committee report's data-quality section: the score, per resource
    type and source, and the worst-kept standards."""
    o = summary.overall
    blocks: list[MetricRow | Table | Paragraph] = [
        MetricRow(
            [
                Metric("Data-quality score", _score(o.score), "0-100"),
                Metric("Standard coding", _share(o.coding)),
                Metric("Required elements", _share(o.completeness)),
                Metric("UCUM units", _share(o.ucum)),
                Metric("Suspected duplicate patients", f"{summary.duplicates:,}"),
            ]
        ),
        Table(
            ["Resource type", "Resources", "Score", "Coding", "Valid codes", "Complete", "UCUM"],
            [
                [
                    r.key,
                    f"{r.resources:,}",
                    _score(r.score),
                    _share(r.coding),
                    _share(r.validity),
                    _share(r.completeness),
                    _share(r.ucum),
                ]
                for r in summary.by_type
            ],
            "Score by resource type",
        ),
        Table(
            ["Source", "Resources", "Score"],
            [[r.key, f"{r.resources:,}", _score(r.score)] for r in summary.by_source],
            "Score by source system",
        ),
    ]
    if summary.trend:
        blocks.append(
            Table(
                ["Month", "Coded elements", "In a standard system"],
                [[m, f"{n:,}", f"{ok / n:.1%}" if n else "\u2014"] for m, n, ok in summary.trend],
                "Standard coding by month",
            )
        )
    worst = [c for c in summary.checks if c.failing][:10]
    if worst:
        blocks.append(
            Table(
                ["Check", "Checked", "Failing", "Passing"],
                [[c.rule, f"{c.checked:,}", f"{c.failing:,}", f"{c.share:.1%}"] for c in worst],
                "Worst-kept standards",
            )
        )
    return [Section("Data quality", blocks)]
