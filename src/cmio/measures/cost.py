"""Cost of care from ExplanationOfBenefit and Claim: totals, per member per month,
per encounter type, principal diagnosis, clinician, department and quality-measure
population, with monthly trends.

Definitions (https://hl7.org/fhir/R4/explanationofbenefit.html, claim.html):

* Cost facts are adjudicated EOBs (``status`` not ``entered-in-error``) whose
  ``billablePeriod.start`` local date is in the period, month by that date.
  Billed = ``total`` of category ``submitted``; allowed (the cost of care) =
  ``eligible``; paid = ``benefit`` (else ``payment.amount``); patient share =
  allowed - paid. Amounts are summed in integer cents (exact on every engine).
* The EOB's ``claim`` gives the Encounter (``Claim.item.encounter``) and the
  principal diagnosis (the ``diagnosis`` of type ``principal``, else sequence 1).
  Encounter type = ``Encounter.class`` code and first ``type`` coding; clinician =
  the primary performer (``participant`` of type PPRF, else the first individual);
  department = ``EOB.provider`` (else ``Encounter.serviceProvider``).
* Member months: a patient counts in a month when an active Coverage
  (``beneficiary``) period overlaps it (no period: always; open end: ongoing).
  PMPM = allowed / member months.
* Populations: a table ``populations(patient_id, population)`` (e.g. the CMS122
  membership) or, without one, the documented rule :func:`diabetes_populations_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

import cmio.views
from cmio.measures.ehr_use.inputs import split_resources
from cmio.measures.sqlengine import Period, SqlEngine

__all__ = [
    "COST_OUTPUTS",
    "cms122_populations",
    "cost_of_care",
    "cost_views",
    "diabetes_populations_sql",
    "read_cost",
]

COST_OUTPUTS = (
    "totals", "months", "encounter_types", "conditions", "clinicians", "departments",
    "populations",
)  # fmt: skip
"""Output tables of :func:`cost_of_care`."""

_AMOUNTS = ("billed", "allowed", "paid", "payment")
_HBA1C = ("4548-4", "17856-6", "4549-2", "96595-4")
"""LOINC codes of hemoglobin A1c tests (CMS122 "HbA1c Laboratory Test" value set members)."""
_DIABETES_SNOMED = ("44054006", "46635009", "73211009")


def _col(name: str, path: str) -> dict[str, str]:
    return {"name": name, "path": path}


def _view(resource: str, *select: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "ViewDefinition", "resource": resource, "status": "active",
            "select": list(select)}  # fmt: skip


def cost_views() -> dict[str, dict[str, Any]]:
    """The ViewDefinitions the cost measures read, by table name."""
    total = "total.where(category.coding.code = '{0}').amount.value.first()"
    dx = "diagnosis.where({0}).diagnosis.ofType(CodeableConcept).coding.first()"
    principal = "type.coding.code = 'principal'"
    pprf = "participant.where(type.coding.code = 'PPRF').individual"
    return {
        "eobs": _view("ExplanationOfBenefit", {"column": [
            _col("eob_id", "id"), _col("status", "status"),
            _col("patient_id", "patient.getReferenceKey(Patient)"),
            _col("claim_id", "claim.getReferenceKey(Claim)"),
            _col("provider_id", "provider.getReferenceKey(Organization)"),
            _col("start_ts", "billablePeriod.start"),
            _col("billed", total.format("submitted")), _col("allowed", total.format("eligible")),
            _col("paid", total.format("benefit")), _col("payment", "payment.amount.value"),
        ]}),
        "claims": _view("Claim", {"column": [
            _col("claim_id", "id"),
            _col("encounter_id", "item.encounter.getReferenceKey(Encounter).first()"),
            _col("p_system", dx.format(principal) + ".system"),
            _col("p_code", dx.format(principal) + ".code"),
            _col("p_display", dx.format(principal) + ".display"),
            _col("s_system", dx.format("sequence = 1") + ".system"),
            _col("s_code", dx.format("sequence = 1") + ".code"),
            _col("s_display", dx.format("sequence = 1") + ".display"),
        ]}),
        "encounters": _view("Encounter", {"column": [
            _col("encounter_id", "id"), _col("class_code", "class.code"),
            _col("type_code", "type.coding.first().code"),
            _col("type_display", "type.coding.first().display"),
            _col("pprf_id", f"{pprf}.getReferenceKey(Practitioner).first()"),
            _col("any_id", "participant.individual.getReferenceKey(Practitioner).first()"),
            _col("org_id", "serviceProvider.getReferenceKey(Organization)"),
        ]}),
        "coverage": _view("Coverage", {"column": [
            _col("patient_id", "beneficiary.getReferenceKey(Patient)"),
            _col("status", "status"), _col("start_ts", "period.start"),
            _col("end_ts", "period.end"),
        ]}),
        "organizations": _view("Organization", {"column": [
            _col("org_id", "id"), _col("org_name", "name"),
        ]}),
        "conditions": _view("Condition", {"column": [
            _col("patient_id", "subject.getReferenceKey(Patient)"),
            _col("clinical_status", "clinicalStatus.coding.code.first()"),
        ]}, {"forEach": "code.coding", "column": [_col("system", "system"), _col("code", "code")]}),
        "a1c": _view("Observation", {"column": [
            _col("patient_id", "subject.getReferenceKey(Patient)"), _col("status", "status"),
            _col("effective_ts", "effective.ofType(dateTime)"),
            _col("value", "value.ofType(Quantity).value"),
        ]}, {"forEach": "code.coding.where(system = 'http://loinc.org')",
             "column": [_col("loinc", "code")]}),
    }  # fmt: skip


def _cents(column: pa.ChunkedArray) -> pa.Array:
    values = [None if v is None else round(Decimal(str(v)) * 100) for v in column.to_pylist()]
    return pa.array(values, pa.int64())


def read_cost(
    source: Any, *, progress: Callable[[str], None] | None = None, **options: Any
) -> dict[str, pa.Table]:
    """Run :func:`cost_views` over ``source`` on DuckDB (amounts as integer cents,
    the HbA1c value as a double)."""
    runner = cmio.views.DuckDbRunner(options.get("model"), threads=options.get("threads"))
    by_type = split_resources(source)
    out: dict[str, pa.Table] = {}
    for name, view in cost_views().items():
        if progress is not None:
            progress(name)
        out[name] = runner.run(
            view, source if by_type is None else by_type.get(view["resource"], [])
        )
    eobs = out["eobs"]
    for amount in _AMOUNTS:
        i = eobs.schema.get_field_index(amount)
        eobs = eobs.set_column(i, amount, _cents(eobs[amount]))
    out["eobs"] = eobs
    a1c = out["a1c"]
    i = a1c.schema.get_field_index("value")
    out["a1c"] = a1c.set_column(i, "value", pc.cast(a1c["value"], pa.float64()))
    return out


def cms122_populations(source: Any, period: Period, **options: Any) -> pa.Table:
    """CMS122 (Diabetes: HbA1c poor control > 9%) membership from the quality-measure
    framework (:func:`cmio.measures.runner.evaluate_measures`) as ``patient_id,
    population``: ``CMS122 numerator (poor control)``, ``CMS122 denominator
    (controlled)`` or ``CMS122 excluded``.

    Args:
        source: the FHIR source. period: the measurement period.
        **options: options of ``evaluate_measures`` (``engine``, ``database`` ...).
    """
    from cmio.measures.definition import builtin_measures
    from cmio.measures.runner import evaluate_measures
    from cmio.measures.sql import Period as MeasurePeriod

    engine = options.pop("engine", "duckdb")
    (result,) = evaluate_measures(
        [builtin_measures()["CMS122"]], MeasurePeriod(period.start, period.end), source,
        engine, **options,
    )  # fmt: skip
    rows = result.members.to_pylist()
    labels = []
    for row in rows:
        if row.get("denominator_exclusion") or not row.get("denominator"):
            labels.append("CMS122 excluded" if row.get("denominator_exclusion") else None)
        elif row.get("numerator"):
            labels.append("CMS122 numerator (poor control)")
        else:
            labels.append("CMS122 denominator (controlled)")
    kept = [(r["patient_id"], label) for r, label in zip(rows, labels, strict=True) if label]
    return pa.table(
        {"patient_id": [str(p) for p, _ in kept], "population": [label for _, label in kept]},
        schema=pa.schema([("patient_id", pa.string()), ("population", pa.string())]),
    )


def _month_table(period: Period) -> pa.Table:
    months, firsts, lasts = [], [], []
    year, month = period.start.year, period.start.month
    while date(year, month, 1) <= period.end:
        first = date(year, month, 1)
        nxt = date(year + month // 12, month % 12 + 1, 1)
        months.append(first.isoformat()[:7])
        firsts.append(max(first, period.start).isoformat())
        lasts.append(min(date.fromordinal(nxt.toordinal() - 1), period.end).isoformat())
        year, month = nxt.year, nxt.month
    return pa.table({"month": months, "first_day": firsts, "last_day": lasts})


def diabetes_populations_sql(period: Period) -> str:
    """Fallback populations when no CMS122 membership is given (a documented rule, not
    the eCQM): patients with a diabetes Condition (ICD-10-CM E10*, E11*, E13*, or SNOMED
    CT 44054006, 46635009, 73211009; clinical status not inactive/resolved) are
    ``diabetes, HbA1c > 9% or not tested`` when their most recent final HbA1c
    (LOINC 4548-4, 17856-6, 4549-2, 96595-4) in the period is above 9 or missing,
    else ``diabetes, HbA1c <= 9%``; everyone else with cost is ``no diabetes``."""
    snomed = ", ".join(f"'{c}'" for c in _DIABETES_SNOMED)
    loinc = ", ".join(f"'{c}'" for c in _HBA1C)
    return f"""
WITH dm AS (
  SELECT DISTINCT patient_id FROM conditions
  WHERE patient_id IS NOT NULL
    AND (clinical_status IS NULL OR clinical_status NOT IN ('inactive', 'resolved', 'remission'))
    AND ((system = 'http://hl7.org/fhir/sid/icd-10-cm' AND (code LIKE 'E10%' OR code LIKE 'E11%'
          OR code LIKE 'E13%'))
      OR (system = 'http://snomed.info/sct' AND code IN ({snomed})))
), tests AS (
  SELECT patient_id, value, ROW_NUMBER() OVER (PARTITION BY patient_id
    ORDER BY effective_ts DESC, value DESC) AS k
  FROM a1c
  WHERE loinc IN ({loinc}) AND status IN ('final', 'amended', 'corrected')
    AND value IS NOT NULL AND effective_ts IS NOT NULL
    AND SUBSTRING(effective_ts, 1, 10) BETWEEN '{period.first}' AND '{period.last}'
)
SELECT dm.patient_id,
  CASE WHEN t.value IS NULL OR t.value > 9 THEN 'diabetes, HbA1c > 9% or not tested'
       ELSE 'diabetes, HbA1c <= 9%' END AS population
FROM dm LEFT JOIN tests AS t ON t.patient_id = dm.patient_id AND t.k = 1
"""


_FACTS = """
SELECT e.eob_id, e.patient_id, SUBSTRING(e.start_ts, 1, 7) AS month,
  COALESCE(e.billed, 0) AS billed, COALESCE(e.allowed, 0) AS allowed,
  COALESCE(e.paid, e.payment, 0) AS paid,
  COALESCE(e.allowed, 0) - COALESCE(e.paid, e.payment, 0) AS patient_share,
  c.encounter_id, en.class_code, en.type_code, en.type_display,
  COALESCE(en.pprf_id, en.any_id) AS clinician_id,
  COALESCE(e.provider_id, en.org_id) AS department_id, o.org_name AS department,
  CASE WHEN c.p_code IS NOT NULL THEN c.p_system ELSE c.s_system END AS dx_system,
  COALESCE(c.p_code, c.s_code) AS dx_code,
  CASE WHEN c.p_code IS NOT NULL THEN c.p_display ELSE c.s_display END AS dx_display
FROM eobs AS e
LEFT JOIN claims AS c ON c.claim_id = e.claim_id
LEFT JOIN encounters AS en ON en.encounter_id = c.encounter_id
LEFT JOIN (SELECT org_id, MIN(org_name) AS org_name FROM organizations GROUP BY org_id) AS o
  ON o.org_id = COALESCE(e.provider_id, en.org_id)
WHERE e.start_ts IS NOT NULL AND (e.status IS NULL OR e.status <> 'entered-in-error')
  AND SUBSTRING(e.start_ts, 1, 10) BETWEEN '{first}' AND '{last}'
"""

_MEMBER_MONTHS = """
SELECT DISTINCT cv.patient_id, m.month
FROM coverage AS cv JOIN cost_calendar AS m
  ON (cv.start_ts IS NULL OR SUBSTRING(cv.start_ts, 1, 10) <= m.last_day)
 AND (cv.end_ts IS NULL OR SUBSTRING(cv.end_ts, 1, 10) >= m.first_day)
WHERE cv.patient_id IS NOT NULL AND (cv.status IS NULL OR cv.status = 'active')
"""

_SUMS = """COUNT(*) AS claims, COUNT(DISTINCT patient_id) AS patients,
  CAST(SUM(billed) AS BIGINT) AS billed_cents, CAST(SUM(allowed) AS BIGINT) AS allowed_cents,
  CAST(SUM(paid) AS BIGINT) AS paid_cents,
  CAST(SUM(patient_share) AS BIGINT) AS patient_share_cents,
  CAST(SUM(allowed) AS DOUBLE) / 100 AS allowed"""


def _grouped(keys: str, *, encounters: bool = False) -> str:
    extra = ", COUNT(DISTINCT encounter_id) AS encounters" if encounters else ""
    per = (
        ", CASE WHEN COUNT(DISTINCT encounter_id) > 0 THEN CAST(SUM(allowed) AS DOUBLE) / 100"
        " / COUNT(DISTINCT encounter_id) END AS allowed_per_encounter"
        if encounters
        else ""
    )
    return f"SELECT {keys}, {_SUMS}{extra}{per} FROM cost_facts GROUP BY {keys} ORDER BY {keys}"


_QUERIES: Mapping[str, str] = MappingProxyType(
    {
        "totals": f"""
SELECT t.*, mm.member_months, mm.members,
  CASE WHEN mm.member_months > 0 THEN t.allowed / mm.member_months END AS pmpm
FROM (SELECT {_SUMS} FROM cost_facts) AS t
CROSS JOIN (SELECT COUNT(*) AS member_months, COUNT(DISTINCT patient_id) AS members
            FROM cost_member_months) AS mm
""",
        "months": """
SELECT m.month, COALESCE(f.claims, 0) AS claims,
  CAST(COALESCE(f.allowed_cents, 0) AS BIGINT) AS allowed_cents,
  CAST(COALESCE(f.paid_cents, 0) AS BIGINT) AS paid_cents,
  COALESCE(mm.member_months, 0) AS member_months,
  CASE WHEN mm.member_months > 0 THEN CAST(COALESCE(f.allowed_cents, 0) AS DOUBLE) / 100
    / mm.member_months END AS pmpm
FROM cost_calendar AS m
LEFT JOIN (SELECT month, COUNT(*) AS claims, SUM(allowed) AS allowed_cents,
           SUM(paid) AS paid_cents FROM cost_facts GROUP BY month) AS f ON f.month = m.month
LEFT JOIN (SELECT month, COUNT(*) AS member_months FROM cost_member_months GROUP BY month)
  AS mm ON mm.month = m.month
ORDER BY m.month
""",
        "encounter_types": _grouped("class_code, type_code, type_display", encounters=True),
        "conditions": _grouped("dx_system, dx_code, dx_display"),
        "clinicians": _grouped("clinician_id", encounters=True),
        "departments": _grouped("department_id, department", encounters=True),
        "populations": """
WITH pop AS (
  SELECT patient_id, MIN(population) AS population FROM cost_populations GROUP BY patient_id
), facts AS (
  SELECT COALESCE(p.population, 'other') AS population, f.patient_id, f.allowed
  FROM cost_facts AS f LEFT JOIN pop AS p ON p.patient_id = f.patient_id
), mm AS (
  SELECT COALESCE(p.population, 'other') AS population, COUNT(*) AS member_months,
    COUNT(DISTINCT m.patient_id) AS members
  FROM cost_member_months AS m LEFT JOIN pop AS p ON p.patient_id = m.patient_id
  GROUP BY COALESCE(p.population, 'other')
), cost AS (
  SELECT population, COUNT(DISTINCT patient_id) AS patients,
    CAST(SUM(allowed) AS BIGINT) AS allowed_cents
  FROM facts GROUP BY population
), names AS (SELECT population FROM cost UNION SELECT population FROM mm)
SELECT n.population, COALESCE(c.patients, 0) AS patients,
  CAST(COALESCE(c.allowed_cents, 0) AS BIGINT) AS allowed_cents,
  COALESCE(mm.members, 0) AS members, COALESCE(mm.member_months, 0) AS member_months,
  CASE WHEN mm.member_months > 0 THEN CAST(COALESCE(c.allowed_cents, 0) AS DOUBLE) / 100
    / mm.member_months END AS pmpm
FROM names AS n LEFT JOIN cost AS c ON c.population = n.population
LEFT JOIN mm ON mm.population = n.population
ORDER BY n.population
""",
    }
)


def cost_of_care(
    inputs: Mapping[str, pa.Table],
    period: Period,
    engine: SqlEngine,
    *,
    populations: pa.Table | None = None,
) -> dict[str, pa.Table]:
    """Compute the cost tables (:data:`COST_OUTPUTS`) on ``engine``.

    Args:
        inputs: the tables of :func:`read_cost`.
        period: the measurement period.
        engine: where the SQL runs.
        populations: ``(patient_id, population)`` rows, e.g. CMS122 membership
            (None: :func:`diabetes_populations_sql`). Patients in none are ``other``.
    """
    for name in cost_views():
        if name not in inputs:
            raise ValueError(f"cost input {name} is missing")
        engine.load(name, inputs[name])
    engine.load("cost_calendar", _month_table(period))
    if populations is not None:
        engine.load("cost_populations", populations.select(["patient_id", "population"]))
    else:
        engine.create("cost_populations", diabetes_populations_sql(period))
    engine.create("cost_facts", _FACTS.format(first=period.first, last=period.last))
    engine.create("cost_member_months", _MEMBER_MONTHS)
    return {name: engine.query(_QUERIES[name]) for name in COST_OUTPUTS}
