"""MeasureReports from measure results: summary, subject-list and individual.

https://hl7.org/fhir/R4/measurereport.html: a ``summary`` report carries the counts
and the score per population and per stratum; a ``subject-list`` report adds, per
population, ``subjectResults`` referencing a contained ``List`` of the patients
(https://hl7.org/fhir/R4/measurereport-definitions.html#MeasureReport.group.population.subjectResults);
an ``individual`` report is one patient's membership (count 0 or 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cmio.measures.definition import POPULATION_SYSTEM
from cmio.measures.runner import MeasureResult
from cmio.measures.sql import population_column

__all__ = ["REPORT_TYPES", "measure_report", "population_code"]

REPORT_TYPES = ("summary", "subject-list", "individual")
_STRATUM = "https://cmio.dev/fhir/CodeSystem/measure-stratifier"


def population_code(column: str) -> str:
    """The population code of a membership column (``denominator_exclusion`` -> ``denominator-exclusion``)."""
    return column.replace("_", "-")


def _codeable(code: str) -> dict[str, Any]:
    return {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _score(value: float | None) -> dict[str, Any]:
    return {"measureScore": {"value": round(value, 6)}} if value is not None else {}


def _base(result: MeasureResult, kind: str) -> dict[str, Any]:
    measure = result.measure
    canonical = measure.canonical + (f"|{measure.version}" if measure.version else "")
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": kind,
        "measure": canonical,
        "date": _now(),
        "period": {
            "start": result.period.start.isoformat(),
            "end": result.period.end.isoformat(),
        },
        "improvementNotation": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                    "code": measure.improvement,
                }
            ]
        },
    }


def measure_report(
    result: MeasureResult, report_type: str = "summary", subject: str | None = None
) -> dict[str, Any]:
    """A MeasureReport of one result.

    Args:
        result: the evaluated measure.
        report_type: ``summary``, ``subject-list`` or ``individual``.
        subject: the patient id of an ``individual`` report.

    Raises:
        ValueError: an unknown report type, or ``individual`` without a subject.
    """
    if report_type not in REPORT_TYPES:
        raise ValueError(f"reportType must be one of {', '.join(REPORT_TYPES)}")
    report = _base(result, report_type)
    codes = list(result.counts)
    if report_type == "individual":
        if not subject:
            raise ValueError("an individual report needs a subject")
        row = result.row(subject) or {}
        report["subject"] = {"reference": f"Patient/{subject}"}
        report["group"] = [
            {
                "population": [
                    {"code": _codeable(population_code(c)), "count": int(bool(row.get(c)))}
                    for c in codes
                ]
            }
        ]
        return report
    populations: list[dict[str, Any]] = []
    contained: list[dict[str, Any]] = []
    for column in codes:
        code = population_code(column)
        entry: dict[str, Any] = {"code": _codeable(code), "count": result.counts[column]}
        if report_type == "subject-list":
            list_id = f"list-{code}"
            contained.append(
                {
                    "resourceType": "List",
                    "id": list_id,
                    "status": "current",
                    "mode": "snapshot",
                    "title": f"{result.measure.id} {code}",
                    "entry": [
                        {"item": {"reference": f"Patient/{p}"}}
                        for p in result.patients(population_column(code))
                    ],
                }
            )
            entry["subjectResults"] = {"reference": f"#{list_id}"}
        populations.append(entry)
    group: dict[str, Any] = {"population": populations, **_score(result.score)}
    stratifiers = []
    for name in result.measure.stratifiers:
        rows = [r for r in result.strata.to_pylist() if r["stratifier"] == name]
        stratifiers.append(
            {
                "code": [{"coding": [{"system": _STRATUM, "code": name}], "text": name}],
                "stratum": [
                    {
                        "value": {"text": r["stratum"]},
                        "population": [
                            {"code": _codeable(population_code(c)), "count": r[c]} for c in codes
                        ],
                        **_score(r["score"]),
                    }
                    for r in rows
                ],
            }
        )
    if stratifiers:
        group["stratifier"] = stratifiers
    report["group"] = [group]
    if contained:
        report["contained"] = contained
    return report
