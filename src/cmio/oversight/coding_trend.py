"""The standard-coding share of the store over time, by the month of each resource's
clinical date: the data-quality score's coding share as a trend
(:mod:`cmio.oversight.data_quality` puts it in the summary).

Each CodeableConcept of the adherence measures' coded elements
(:mod:`cmio.measures.adherence`) counts once, standard when one of its codings is in
one of the element's standard systems (https://hl7.org/fhir/R4/datatypes.html#CodeableConcept).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from cmio.oversight.period import ReportingPeriod
from cmio.store.base import Repository

__all__ = ["DATES", "coding_months", "coding_trend", "in_period"]

DATES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "Condition": ("recordedDate", "onsetDateTime", "onsetPeriod.start"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "MedicationRequest": ("authoredOn",),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "ServiceRequest": ("authoredOn",),
    "Encounter": ("period.start",),
    "DocumentReference": ("date",),
    "Claim": ("created",),
})  # fmt: skip
"""The clinical date that places a resource in a month (the first present)."""


def _walk(values: list[Any], path: str) -> list[Any]:
    """The values at a simple FHIRPath (``a.b``, ``x.ofType(CodeableConcept)``)."""
    for step in path.split("."):
        name = step
        if step.startswith("ofType("):
            continue
        if path.endswith(".ofType(CodeableConcept)") and step == path.split(".")[0]:
            name = step + "CodeableConcept"
        found: list[Any] = []
        for value in values:
            item = value.get(name) if isinstance(value, dict) else None
            if isinstance(item, list):
                found.extend(item)
            elif item is not None:
                found.append(item)
        values = found
    return values


def _month(resource: Mapping[str, Any]) -> str | None:
    for path in DATES.get(str(resource.get("resourceType")), ()):
        for value in _walk([resource], path):
            if isinstance(value, str) and len(value) >= 7:
                return value[:7]
    return None


def coding_trend(
    repository: Repository,
    period: ReportingPeriod,
    elements: Mapping[str, tuple[str, str, tuple[str, ...]]],
) -> list[tuple[str, int, int]]:
    """Coded elements and those in a standard code system, by month of the resources'
    clinical date (:data:`DATES`) within the period: the score's coding share over time.

    Each CodeableConcept counts once, standard when one of its codings is in one of the
    element's standard systems (as the adherence measures count them).
    """
    return in_period(coding_months(repository, elements), period)


def in_period(
    months: Iterable[tuple[str, int, int]], period: ReportingPeriod
) -> list[tuple[str, int, int]]:
    """The months (``YYYY-MM`` first) of ``months`` within the period."""
    first, last = period.start.isoformat()[:7], period.end.isoformat()[:7]
    return [row for row in months if first <= row[0] <= last]


def coding_months(
    repository: Repository, elements: Mapping[str, tuple[str, str, tuple[str, ...]]]
) -> list[tuple[str, int, int]]:
    """:func:`coding_trend` for every month of the store (one pass over the resources;
    a period's trend is its slice, so the store is read once for all periods)."""
    by_type: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for rtype, path, systems in elements.values():
        by_type.setdefault(rtype, []).append((path, systems))
    months: dict[str, list[int]] = {}
    for stored in repository.iter_current(sorted(by_type)):
        if stored.data is None:
            continue
        resource = json.loads(stored.data)
        month = _month(resource)
        if month is None:
            continue
        cell = months.setdefault(month, [0, 0])
        for path, systems in by_type.get(stored.type, ()):
            for concept in _walk([resource], path):
                codings = concept.get("coding") or [] if isinstance(concept, dict) else []
                cell[0] += 1
                cell[1] += any(c.get("system") in systems for c in codings)
    return [(m, n, ok) for m, (n, ok) in sorted(months.items())]
