"""Counting and stratifying a measure's members (:attr:`cmio.measures.MeasureResult.members`).

One group-by per stratifier over the members table the measure framework evaluated
(https://hl7.org/fhir/R4/measure-definitions.html#Measure.group.stratifier): strata of
one stratifier partition the initial population, so their counts add up to the
measure's. Stratum values become labels people read: clinicians' names, the CDC Race &
Ethnicity OMB category displays (US Core race/ethnicity), capitalized sex.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pyarrow as pa
import pyarrow.compute as pc

from cmio.store.base import Repository

__all__ = [
    "EQUITY_STRATIFIERS",
    "STRATIFIERS",
    "STRATIFIER_LABELS",
    "Counts",
    "Stratum",
    "counts_of",
    "flag",
    "practitioner_names",
    "strata_of",
    "stratum_label",
]

STRATIFIERS = ("clinician", "department", "sex", "age_band", "race", "ethnicity", "payer")
EQUITY_STRATIFIERS = ("sex", "age_band", "race", "ethnicity", "payer")
STRATIFIER_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "clinician": "Clinician",
        "department": "Department",
        "sex": "Sex",
        "age_band": "Age band",
        "race": "Race",
        "ethnicity": "Ethnicity",
        "payer": "Payer",
    }
)
_OMB: Mapping[str, str] = MappingProxyType(
    {  # CDC Race & Ethnicity code set, OMB categories (urn:oid:2.16.840.1.113883.6.238)
        "1002-5": "American Indian or Alaska Native",
        "2028-9": "Asian",
        "2054-5": "Black or African American",
        "2076-8": "Native Hawaiian or Other Pacific Islander",
        "2106-3": "White",
        "2131-1": "Other Race",
        "2135-2": "Hispanic or Latino",
        "2186-5": "Not Hispanic or Latino",
    }
)


@dataclass(frozen=True, slots=True)
class Counts:
    """Population counts and rate of a measure (or of one stratum, or one window).

    Attributes:
        initial_population: patients in the initial population.
        denominator: the rate's denominator: DEN - DENEX - DENEXCEP.
        numerator: the rate's numerator: NUM - NUMEX.
        exclusions: denominator exclusions plus exceptions.
        gaps: patients with an open care gap.
        rate: numerator / denominator (None when the denominator is empty).
    """

    initial_population: int
    denominator: int
    numerator: int
    exclusions: int
    gaps: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class Stratum:
    """One stratum of a stratifier: ``value`` as the members table has it, ``label`` for
    people (a clinician's name, a race's display)."""

    stratifier: str
    value: str
    label: str
    counts: Counts


def flag(members: pa.Table, column: str) -> pa.ChunkedArray | pa.Array:
    """A boolean column of the members (all false when absent; nulls false)."""
    if column not in members.column_names:
        return pa.array([False] * members.num_rows, pa.bool_())
    return pc.fill_null(members[column], False)


def _scored(members: pa.Table) -> pa.Table:
    """The members with 0/1 columns ``ip``, ``den``, ``num``, ``excl``, ``gap``."""
    den = flag(members, "denominator")
    excluded = pc.or_(
        flag(members, "denominator_exclusion"), flag(members, "denominator_exception")
    )
    eligible = pc.and_(den, pc.invert(excluded))
    num = pc.and_(flag(members, "numerator"), pc.invert(flag(members, "numerator_exclusion")))
    values = {
        "ip": flag(members, "initial_population"),
        "den": eligible,
        "num": pc.and_(num, eligible),
        "excl": pc.and_(den, excluded),
        "gap": flag(members, "care_gap"),
    }
    out = members
    for name, array in values.items():
        out = out.append_column(name, pc.cast(array, pa.int64()))
    return out


def _counts(ip: int, den: int, num: int, excl: int, gap: int) -> Counts:
    return Counts(ip, den, num, excl, gap, num / den if den > 0 else None)


def counts_of(members: pa.Table) -> Counts:
    """The counts of a members table (:attr:`MeasureResult.members`) or a slice of it."""
    scored = _scored(members)
    sums = [int(pc.sum(scored[c]).as_py() or 0) for c in ("ip", "den", "num", "excl", "gap")]
    return _counts(*sums)


def strata_of(
    members: pa.Table, stratifiers: Sequence[str], labels: Mapping[str, str] | None = None
) -> tuple[Stratum, ...]:
    """Counts per stratum (one group-by per stratifier over the members table).

    Args:
        members: the measure's members (``strat_<name>`` columns).
        stratifiers: which stratifiers (absent columns are skipped).
        labels: display names of stratum values (clinicians), else codes are shown.
    """
    scored = _scored(members)
    out: list[Stratum] = []
    for name in stratifiers:
        column = f"strat_{name}"
        if column not in scored.column_names:
            continue
        grouped = scored.group_by(column).aggregate(
            [(c, "sum") for c in ("ip", "den", "num", "excl", "gap")]
        )
        rows = grouped.to_pylist()
        rows.sort(key=lambda r: (-int(r["ip_sum"]), str(r[column])))
        for row in rows:
            value = str(row[column])
            counts = _counts(*(int(row[f"{c}_sum"]) for c in ("ip", "den", "num", "excl", "gap")))
            out.append(Stratum(name, value, stratum_label(name, value, labels or {}), counts))
    return tuple(out)


def stratum_label(stratifier: str, value: str, labels: Mapping[str, str]) -> str:
    """The text people read for a stratum value."""
    if value == "unknown":
        return "Not recorded"
    if value in labels:
        return labels[value]
    if stratifier in ("race", "ethnicity"):
        return _OMB.get(value, value)
    if stratifier == "sex":
        return value.capitalize()
    return value


def practitioner_names(source: Repository | str | Path) -> dict[str, str]:
    """``Practitioner/[id]`` -> ``Given Family, SUFFIX`` (the first HumanName), from a
    store or a Bulk NDJSON/Parquet folder (through a ViewDefinition)."""
    import cmio.views

    view = {
        "resourceType": "ViewDefinition",
        "resource": "Practitioner",
        "status": "active",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id"},
                    {"name": "given", "path": "name.first().given.first()"},
                    {"name": "family", "path": "name.first().family"},
                    {"name": "suffix", "path": "name.first().suffix.first()"},
                ]
            }
        ],
    }
    names: dict[str, str] = {}
    for row in cmio.views.DuckDbRunner().run(view, source).to_pylist():
        text = " ".join(str(p) for p in (row["given"], row["family"]) if p)
        if text and row["suffix"]:
            text = f"{text}, {row['suffix']}"
        if text:
            names[f"Practitioner/{row['id']}"] = text
    return names
