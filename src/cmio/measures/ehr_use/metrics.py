"""The seven core EHR-use measures of Sinsky et al. (JAMIA 2020), per clinician,
department, specialty and month, with trends and peer percentiles.

Spec: Sinsky CA, Rule A, Cohen G, et al. "Metrics for assessing physician activity
using electronic health record log data", JAMIA 2020;27(4):639-643,
https://doi.org/10.1093/jamia/ocz223. The session rules are those of
:mod:`cmio.measures.ehr_use.sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import pyarrow as pa

from cmio.measures.ehr_use import sql
from cmio.measures.ehr_use.inputs import (
    AUDIT_SCHEMA,
    CsvMapping,
    read_audit_csv,
    read_views,
)
from cmio.measures.sqlengine import Period, SqlEngine

__all__ = [
    "INPUT_SCHEMAS", "METRICS", "OUTPUTS", "SessionRules", "TableMaker", "compute_ehr_use",
    "ehr_outputs", "ehr_use", "read_ehr_inputs",
]  # fmt: skip

METRICS = (
    "ehr_time8", "wow8", "note_time8", "prescription_time8", "inbox_time8",
    "teamwork_orders", "undivided_attention",
)  # fmt: skip
"""The seven metrics, as output column names."""

OUTPUTS = ("clinician_month", "clinicians", "departments", "specialties", "months", "peers")
"""Output tables of :func:`ehr_use`."""

_S = pa.string()
INPUT_SCHEMAS: Mapping[str, pa.Schema] = MappingProxyType({
    "audit_events": AUDIT_SCHEMA,
    "schedules": pa.schema([("schedule_id", _S), ("active", pa.bool_()), ("user_id", _S)]),
    "slots": pa.schema([("schedule_id", _S), ("status", _S), ("start_ts", _S), ("end_ts", _S)]),
    "appointments": pa.schema(
        [("appointment_id", _S), ("status", _S), ("start_ts", _S), ("end_ts", _S),
         ("user_id", _S), ("participant_status", _S)]
    ),
    "roles": pa.schema(
        [("role_id", _S), ("user_id", _S), ("department_id", _S), ("snomed_specialty", _S),
         ("specialty_any", _S)]
    ),
    "departments": pa.schema([("department_id", _S), ("department", _S)]),
    "orders": pa.schema(
        [("order_id", _S), ("requester_id", _S), ("authored_ts", _S), ("intent", _S),
         ("order_type", _S)]
    ),
    "provenance": pa.schema([("author_id", _S), ("enterer_id", _S), ("target_ref", _S)]),
})  # fmt: skip
"""Columns of each input table (views of :mod:`cmio.measures.ehr_use.inputs`)."""


@dataclass(frozen=True, slots=True)
class SessionRules:
    """Sessionization parameters.

    Attributes:
        timeout_s: inactivity timeout in seconds (default 5 minutes, as the vendor
            active-time definitions discussed by Sinsky et al.).
    """

    timeout_s: int = 300

    def __post_init__(self) -> None:
        if self.timeout_s < 0:
            raise ValueError("the inactivity timeout cannot be negative")


def _conform(name: str, table: pa.Table | None) -> pa.Table:
    schema = INPUT_SCHEMAS[name]
    if table is None:
        return schema.empty_table()
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"input {name} lacks column(s) {', '.join(missing)}")
    return pa.table([table[f.name].cast(f.type) for f in schema], schema=schema)


_PEOPLE = """
SELECT r.user_id, r.department_id, d.department,
       COALESCE(r.snomed_specialty, r.specialty_any) AS specialty
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY role_id) AS k
      FROM roles WHERE user_id IS NOT NULL) AS r
LEFT JOIN (SELECT department_id, MIN(department) AS department FROM departments
           GROUP BY department_id) AS d ON d.department_id = r.department_id
WHERE r.k = 1
"""

_WITH_PEOPLE = """
SELECT m.*, p.department_id, p.department, p.specialty
FROM ehr_monthly AS m LEFT JOIN ehr_people AS p ON p.user_id = m.user_id
"""

_TIMES = ("ehr_s", "in_s", "out_s", "note_s", "rx_s", "inbox_s")
_POOL = f"""
SELECT w.user_id, w.month, w.department_id, w.department, w.specialty, w.sched_s,
  {", ".join(f"CASE WHEN s.user_id IS NULL THEN 0 ELSE w.{c} END AS {c}" for c in _TIMES)},
  w.orders, w.team_orders
FROM ehr_with_people AS w
LEFT JOIN (SELECT user_id FROM ehr_with_people GROUP BY user_id HAVING SUM(sched_s) > 0) AS s
  ON s.user_id = w.user_id
"""


def _peers_sql() -> str:
    long = " UNION ALL ".join(
        f"SELECT user_id, specialty, '{m}' AS metric, {m} AS value FROM ehr_clinicians"
        for m in METRICS
    )
    quantiles = ", ".join(
        f"QUANTILE_CONT(value, {q}) AS p{int(q * 100)}" for q in (0.25, 0.5, 0.75, 0.9)
    )
    return f"""
WITH ok AS (
  SELECT * FROM ({long}) AS l
  WHERE value IS NOT NULL AND specialty IS NOT NULL
), stats AS (
  SELECT specialty, metric, COUNT(*) AS peers, {quantiles} FROM ok GROUP BY specialty, metric
)
SELECT ok.user_id, ok.specialty, ok.metric, ok.value,
  PERCENT_RANK() OVER (PARTITION BY ok.specialty, ok.metric ORDER BY ok.value) AS percentile_rank,
  st.peers, st.p25, st.p50, st.p75, st.p90
FROM ok JOIN stats AS st ON st.specialty = ok.specialty AND st.metric = ok.metric
ORDER BY ok.specialty, ok.metric, ok.user_id
"""


def _months_sql() -> str:
    return f"""
SELECT *, ehr_time8 - LAG(ehr_time8) OVER (ORDER BY month) AS ehr_time8_change,
       wow8 - LAG(wow8) OVER (ORDER BY month) AS wow8_change
FROM ({sql.metrics_select(("month",), "ehr_pool")}) AS t
ORDER BY month
"""


def ehr_use(
    inputs: Mapping[str, pa.Table | None],
    period: Period,
    engine: SqlEngine,
    rules: SessionRules | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, pa.Table]:
    """Compute the EHR-use measures on ``engine``.

    Args:
        inputs: input tables by name (:data:`INPUT_SCHEMAS`; missing ones are empty).
        period: the measurement period.
        engine: where the SQL runs.
        rules: session rules.
        progress: called with the name of each step.

    Returns:
        The :data:`OUTPUTS` tables: ``clinician_month``, ``clinicians`` (the period),
        ``departments``, ``specialties``, ``months`` (system-wide trend with
        month-over-month changes; these pool the time of clinicians with scheduled
        patient time in the period, and every clinician's orders) and ``peers`` (each clinician's value, percentile
        rank within the specialty and the specialty's p25/p50/p75/p90).
    """
    rules = rules or SessionRules()
    step = progress or (lambda _name: None)
    for name in INPUT_SCHEMAS:
        engine.load(name, _conform(name, inputs.get(name)))
    steps = (
        ("ehr_ev", sql.events_sql(period)),
        ("ehr_slices", sql.slices_sql(rules.timeout_s)),
        ("ehr_sched", sql.schedule_sql(period)),
        ("ehr_inside", sql.inside_sql(asof=engine.engine == "duckdb")),
        ("ehr_monthly", sql.monthly_sql(period)),
    )
    for name, query in steps:
        step(name)
        engine.create(name, query)
    return ehr_outputs(engine, step)


class TableMaker(Protocol):
    """Where :func:`ehr_outputs` runs (an :class:`SqlEngine`, or a
    :class:`cmio.measures.state.StateDb`)."""

    def create(self, name: str, sql: str) -> None: ...

    def query(self, sql: str) -> pa.Table: ...


def ehr_outputs(
    engine: TableMaker, step: Callable[[str], None] | None = None
) -> dict[str, pa.Table]:
    """The :data:`OUTPUTS` tables from ``ehr_monthly`` (per clinician and month),
    ``roles`` and ``departments``."""
    step = step or (lambda _name: None)
    steps = (
        ("ehr_people", _PEOPLE),
        ("ehr_with_people", _WITH_PEOPLE),
        ("ehr_pool", _POOL),
        ("ehr_clinicians", sql.metrics_select(
            ("user_id", "department_id", "department", "specialty"), "ehr_with_people")),
    )  # fmt: skip
    for name, query in steps:
        step(name)
        engine.create(name, query)
    step("outputs")
    levels = {
        "clinician_month": ("user_id", "department_id", "department", "specialty", "month"),
        "departments": ("department_id", "department"),
        "specialties": ("specialty",),
    }
    out: dict[str, pa.Table] = {}
    for name, group in levels.items():
        order = ", ".join(group)
        table = "ehr_with_people" if name == "clinician_month" else "ehr_pool"
        out[name] = engine.query(
            f"SELECT * FROM ({sql.metrics_select(group, table)}) AS t ORDER BY {order}"
        )
    out["clinicians"] = engine.query("SELECT * FROM ehr_clinicians ORDER BY user_id")
    out["months"] = engine.query(_months_sql())
    out["peers"] = engine.query(_peers_sql())
    return {name: out[name] for name in OUTPUTS}


def compute_ehr_use(
    source: Any,
    period: Period,
    *,
    engine: SqlEngine,
    audit_csv: Sequence[Path] = (),
    csv_mapping: CsvMapping | None = None,
    audit_events: bool = True,
    rules: SessionRules | None = None,
    progress: Callable[[str], None] | None = None,
    **view_options: Any,
) -> dict[str, pa.Table]:
    """Read the inputs from a FHIR source (and vendor CSVs) and compute :func:`ehr_use`.

    Args:
        source: a store, NDJSON/Parquet folder or resources (see :func:`cmio.views.run`).
        period: the measurement period.
        engine: where the measure SQL runs (the views run on DuckDB unless
            ``view_options`` name another ``engine``).
        audit_csv: vendor audit-log CSV files, mapped with ``csv_mapping``.
        csv_mapping: the CSV column mapping (default: :class:`CsvMapping`).
        audit_events: whether the source's AuditEvents count too.
        rules: session rules.
        progress: called with the name of each step.
        **view_options: options of :func:`cmio.views.run`.
    """
    inputs = read_ehr_inputs(
        source, audit_csv=audit_csv, csv_mapping=csv_mapping, audit_events=audit_events,
        progress=progress, **view_options,
    )  # fmt: skip
    return ehr_use(inputs, period, engine, rules, progress=progress)


def read_ehr_inputs(
    source: Any,
    *,
    audit_csv: Sequence[Path] = (),
    csv_mapping: CsvMapping | None = None,
    audit_events: bool = True,
    progress: Callable[[str], None] | None = None,
    **view_options: Any,
) -> dict[str, pa.Table]:
    """The input tables of :func:`ehr_use` from a FHIR source and vendor CSVs (arguments
    as :func:`compute_ehr_use`)."""
    inputs = read_views(source, progress=progress, **view_options)
    parts = [inputs["audit_events"]] if audit_events else []
    if audit_csv:
        parts.append(read_audit_csv(audit_csv, csv_mapping))
    inputs["audit_events"] = pa.concat_tables(parts) if parts else AUDIT_SCHEMA.empty_table()
    return inputs
