"""Measure change: population counts per clinician with the active and the proposed version.

Both versions run on the store over the same measurement period with the measure
framework (:mod:`cmio.measures`); the per-clinician counts are its ``clinician``
stratifier (the attributed practitioner, added when a version does not declare it;
https://hl7.org/fhir/R4/measure-definitions.html#Measure.group.stratifier).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from cmio.governance.impact_model import ClinicianShift
from cmio.measures import MeasureDefinition, MeasureResult, MeasureRunner, Period
from cmio.measures.engines import open_engine
from cmio.store.base import GoneError, NotFoundError, Repository
from cmio.terminology.service import TerminologyService

__all__ = ["CLINICIAN", "measure_change"]

CLINICIAN = "clinician"
"""The stratifier of the common measure library that attributes patients to clinicians."""


def _with_clinician(measure: MeasureDefinition) -> MeasureDefinition:
    if CLINICIAN in measure.stratifiers:
        return measure
    return dataclasses.replace(measure, stratifiers=(*measure.stratifiers, CLINICIAN))


def _by_clinician(result: MeasureResult | None) -> dict[str, dict[str, int]]:
    if result is None:
        return {}
    out: dict[str, dict[str, int]] = {}
    for row in result.strata.to_pylist():
        if row["stratifier"] != CLINICIAN:
            continue
        counts = {
            k: int(v)
            for k, v in row.items()
            if k not in ("stratifier", "stratum", "score") and isinstance(v, int)
        }
        out[str(row["stratum"] or "(unattributed)")] = counts
    return out


def measure_change(
    repository: Repository,
    old: MeasureDefinition | None,
    new: MeasureDefinition,
    period: Period,
    *,
    service: TerminologyService | None = None,
    valuesets: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, int]], list[ClinicianShift]]:
    """Totals (``before``/``after``) and per-clinician counts of both versions.

    Raises:
        MeasureDefinitionError: a version's SQL is invalid.
        ValueSetError: a value set it names cannot be expanded.
    """
    engine = open_engine("duckdb", threads=1)
    try:
        runner = MeasureRunner(engine, valuesets=valuesets, terminology=service)
        results: list[MeasureResult | None] = []
        for version in (old, new):
            if version is None:
                results.append(None)
                continue
            results += runner.evaluate([_with_clinician(version)], period, repository)
    finally:
        engine.close()
    before, after = (dict(r.counts) if r is not None else {} for r in results)
    per_before, per_after = _by_clinician(results[0]), _by_clinician(results[1])
    shifts = [
        ClinicianShift(ref, per_before.get(ref, {}), per_after.get(ref, {}), _name(repository, ref))
        for ref in sorted(set(per_before) | set(per_after))
    ]
    return {"before": before, "after": after}, shifts


def _name(repository: Repository, reference: str) -> str:
    """The display name of ``Practitioner/id`` (https://hl7.org/fhir/R4/datatypes.html#HumanName),
    empty when there is none."""
    rtype, _, rid = reference.partition("/")
    if rtype != "Practitioner" or not rid:
        return ""
    try:
        stored = repository.read(rtype, rid)
    except (NotFoundError, GoneError):
        return ""
    for name in orjson.loads(stored.data or b"{}").get("name") or []:
        if isinstance(name.get("text"), str):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family")]
        text = " ".join(str(p) for p in parts if isinstance(p, str))
        if text:
            return text
    return ""
