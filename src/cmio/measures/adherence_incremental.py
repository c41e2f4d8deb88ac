"""Standards adherence and data quality refreshed incrementally after a day's resources.

:class:`DataQualityState` keeps the data-quality inputs (the tables of
:func:`cmio.measures.adherence.read_adherence`), the source of each resource, the code
and unit checks and, per output, additive counts by the output's keys, in a
:class:`cmio.measures.state.StateDb`. Every count is a sum over resources (a coded
element is one resource's), so :meth:`DataQualityState.refresh` re-sums only the touched
resources: their stored rows counted with their old source are subtracted, their new rows
with their new source added. Touched are the day's resources (new or changed: a changed
resource's rows replace its stored rows) and the resources a day's HL7 v2 MessageHeader
names (their source may change). Only codes and units not checked before are checked;
suspected duplicates are re-scored for the day's patients against their blocks. Shares
and the score follow from the counts. The results equal
:func:`cmio.measures.adherence.data_quality` over the inputs with the day's resources
(``tests/measures/test_incremental_oversight.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pyarrow as pa

from cmio.measures import adherence_sql as q
from cmio.measures.adherence import (
    ADHERENCE_OUTPUTS,
    Standards,
    check_codes,
    check_units,
    data_quality,
)
from cmio.measures.adherence_dupes import PAIRS_SQL
from cmio.measures.sqlengine import SqlEngine
from cmio.measures.state import StateDb
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.ucum import Ucum

__all__ = ["DataQualityState", "data_quality_state"]

_INPUTS = ("resources", "coded", "required", "quantities", "messages", "patients")
_PER_RESOURCE = ("resources", "coded", "required", "quantities")
_SRC = "COALESCE(src.source, 'unspecified')"
_UCUM = "'http://unitsofmeasure.org'"
_JOIN = "LEFT JOIN {src} AS src ON src.resource_type = {0}.resource_type AND src.id = {0}.id"

# Additive counts per output: (keys, SELECT of keys and counts over {rows} tables).
_AGG: Mapping[str, tuple[str, str]] = MappingProxyType({
    "coding": ("resource_type, source, element", f"""
WITH el AS (
  SELECT c.resource_type, c.id, c.element, c.cc_index,
    MAX(CASE WHEN s.system IS NULL THEN 0 ELSE 1 END) AS standard
  FROM {{coded}} AS c
  LEFT JOIN dq_standard AS s ON s.element = c.element AND s.system = c.system
  GROUP BY c.resource_type, c.id, c.element, c.cc_index
)
SELECT el.resource_type, {_SRC} AS source, el.element, COUNT(*) AS elements,
  SUM(el.standard) AS standard_elements
FROM el {_JOIN.format("el", src="{src}")}
GROUP BY el.resource_type, {_SRC}, el.element"""),
    "codes": ("resource_type, source", f"""
SELECT c.resource_type, {_SRC} AS source, COUNT(*) AS codings,
  SUM(CASE WHEN k.status = 'valid' THEN 1 ELSE 0 END) AS valid,
  SUM(CASE WHEN k.status = 'invalid' THEN 1 ELSE 0 END) AS invalid,
  SUM(CASE WHEN k.status = 'deprecated' THEN 1 ELSE 0 END) AS deprecated,
  SUM(CASE WHEN k.status = 'unchecked' THEN 1 ELSE 0 END) AS unchecked
FROM {{coded}} AS c JOIN dq_checked AS k ON k.system = c.system AND k.code = c.code
{_JOIN.format("c", src="{src}")}
GROUP BY c.resource_type, {_SRC}"""),
    "code_issues": ("resource_type, element, system, code, status, reason", """
SELECT c.resource_type, c.element, k.system, k.code, k.status, k.reason, COUNT(*) AS uses
FROM {coded} AS c JOIN dq_checked AS k ON k.system = c.system AND k.code = c.code
WHERE k.status IN ('invalid', 'deprecated')
GROUP BY c.resource_type, c.element, k.system, k.code, k.status, k.reason"""),
    "required": ("resource_type, source, element", f"""
SELECT r.resource_type, {_SRC} AS source, r.element, COUNT(*) AS resources,
  SUM(CASE WHEN NOT r.present THEN 1 ELSE 0 END) AS missing,
  SUM(CASE WHEN r.present THEN 1 ELSE 0 END) AS present
FROM {{required}} AS r {_JOIN.format("r", src="{src}")}
GROUP BY r.resource_type, {_SRC}, r.element"""),
    "units": ("resource_type, source", f"""
WITH q AS (
  SELECT q.resource_type, q.id,
    CASE WHEN q.system = {_UCUM} AND u.code IS NOT NULL AND u.reason IS NULL THEN 1 ELSE 0 END
      AS ok
  FROM {{quantities}} AS q
  LEFT JOIN dq_ucum AS u ON u.code = q.code AND q.system = {_UCUM}
  WHERE q.unit IS NOT NULL OR q.code IS NOT NULL OR q.system IS NOT NULL
)
SELECT q.resource_type, {_SRC} AS source, COUNT(*) AS quantities, SUM(q.ok) AS conformant
FROM q {_JOIN.format("q", src="{src}")}
GROUP BY q.resource_type, {_SRC}"""),
    "unit_issues": ("unit, system, code, reason", f"""
SELECT q.unit, q.system, q.code,
  CASE WHEN q.system IS NULL OR q.system <> {_UCUM} THEN 'not the UCUM system'
       WHEN q.code IS NULL THEN 'no UCUM code' ELSE u.reason END AS reason,
  COUNT(*) AS uses
FROM {{quantities}} AS q LEFT JOIN dq_ucum AS u ON u.code = q.code AND q.system = {_UCUM}
WHERE (q.unit IS NOT NULL OR q.code IS NOT NULL OR q.system IS NOT NULL)
  AND NOT (q.system = {_UCUM} AND u.code IS NOT NULL AND u.reason IS NULL)
GROUP BY q.unit, q.system, q.code,
  CASE WHEN q.system IS NULL OR q.system <> {_UCUM} THEN 'not the UCUM system'
       WHEN q.code IS NULL THEN 'no UCUM code' ELSE u.reason END"""),
})  # fmt: skip

_COUNTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "coding": ("elements", "standard_elements"),
    "codes": ("codings", "valid", "invalid", "deprecated", "unchecked"),
    "code_issues": ("uses",),
    "required": ("resources", "missing", "present"),
    "units": ("quantities", "conformant"),
    "unit_issues": ("uses",),
})  # fmt: skip

# The output tables from the counts (columns and types as adherence_sql.TABLES).
_OUT: Mapping[str, str] = MappingProxyType({
    "coding": "SELECT resource_type, source, element, elements, standard_elements,"
              " CAST(standard_elements AS DOUBLE) / elements AS standard_share FROM dq_agg_coding",
    "codes": "SELECT resource_type, source, codings, valid, invalid, deprecated, unchecked,"
             " CASE WHEN codings - unchecked > 0 THEN CAST(valid AS DOUBLE)"
             " / (codings - unchecked) END AS valid_share FROM dq_agg_codes",
    "code_issues": "SELECT * FROM dq_agg_code_issues",
    "required": "SELECT resource_type, source, element, resources, missing,"
                " CAST(present AS DOUBLE) / resources AS present_share FROM dq_agg_required",
    "units": "SELECT resource_type, source, quantities, conformant,"
             " CAST(conformant AS DOUBLE) / quantities AS ucum_share FROM dq_agg_units",
    "unit_issues": "SELECT * FROM dq_agg_unit_issues",
})  # fmt: skip

_DAY_PAIRS = PAIRS_SQL.replace("a.id_rank < b.id_rank", "a.id < b.id").replace(
    "WHERE a.birth_date IS NOT NULL",
    "WHERE (a.id IN (SELECT id FROM _cmio_p) OR b.id IN (SELECT id FROM _cmio_p))"
    " AND a.birth_date IS NOT NULL",
)


def _in(keys: str) -> str:
    """Whether the row ``x`` is one of the resources of table ``keys``."""
    return (
        f"EXISTS (SELECT 1 FROM {keys} AS k WHERE k.resource_type = x.resource_type"
        " AND k.id = x.id)"
    )


_ROWS = ("coded", "required", "quantities")


def _sums(name: str, sql: str) -> str:
    keys, _ = _AGG[name]
    sums = ", ".join(f"CAST(SUM({c}) AS BIGINT) AS {c}" for c in _COUNTS[name])
    first = _COUNTS[name][0]
    return f"SELECT {keys}, {sums} FROM ({sql}) AS d GROUP BY {keys} HAVING SUM({first}) > 0"


class DataQualityState:
    """Data-quality inputs, checks and counts.

    Args:
        db: where the tables are kept.
        terminology: checks new codes.
        standards: the organization's standards (as :func:`data_quality`).
        ucum: checks new units (default :class:`cmio.terminology.ucum.Ucum`).
    """

    def __init__(
        self,
        db: StateDb,
        terminology: TerminologyResources,
        standards: Standards | None = None,
        *,
        ucum: Ucum | None = None,
    ) -> None:
        self.db = db
        self.terminology = terminology
        self.standards = standards or Standards()
        self.ucum = ucum or Ucum()

    def build(self, inputs: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
        """Store the inputs, check codes and units, count, and return the outputs
        (:data:`cmio.measures.adherence.ADHERENCE_OUTPUTS`, as :func:`data_quality`)."""
        db = self.db
        engine = SqlEngine()
        try:
            out = data_quality(inputs, engine, self.terminology, self.standards, ucum=self.ucum)
            for name in ("standard", "sources", "checked", "ucum"):
                db.store(f"dq_{name}", engine.query(f"SELECT * FROM dq_{name}"))
        finally:
            engine.close()
        for name in _INPUTS:
            db.store(f"dq_{name}", inputs[name])
        db.store("dq_out_duplicates", out["duplicates"])
        rows = {"coded": "dq_coded", "required": "dq_required", "quantities": "dq_quantities"}
        for name, (_, sql) in _AGG.items():
            db.create(f"dq_agg_{name}", _sums(name, sql.format(src="dq_sources", **rows)))
        db.write_meta("data_quality", {"built": "yes"})
        return self.outputs()

    def exists(self) -> bool:
        """Whether ``db`` holds a data-quality state (built before)."""
        return self.db.read_meta("data_quality") is not None

    def outputs(self) -> dict[str, pa.Table]:
        """The output tables over the current state."""
        out: dict[str, pa.Table] = {}
        for name, sql in _OUT.items():
            self.db.create(f"dq_out_{name}", sql)
            out[name] = self.db.query(f"SELECT * FROM dq_out_{name} ORDER BY {q.ORDER[name]}")
        out["duplicates"] = self.db.query(
            "SELECT * FROM dq_out_duplicates ORDER BY patient_a, patient_b"
        )
        out["score"] = self.db.query(q.SCORE)
        return {name: out[name] for name in ADHERENCE_OUTPUTS}

    def refresh(self, day: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
        """Bring the state up to date with the day's input rows (tables named as
        :func:`cmio.measures.adherence.read_adherence` returns; a resource in the day's
        ``resources`` replaces its stored rows) and return the outputs."""
        db = self.db
        unknown = sorted(set(day) - set(_INPUTS))
        if unknown:
            raise ValueError(f"unknown data-quality input(s) {', '.join(unknown)}")
        empty = {n: db.query(f"SELECT * FROM dq_{n} LIMIT 0") for n in _INPUTS}
        new = {n: _conform(day.get(n), empty[n]) for n in _INPUTS}
        with db.registered(**{f"_cmio_day_{n}": t for n, t in new.items()}), db.transaction():
            db.create("dq_touched", _TOUCHED)
            db.create("dq_existing", _EXISTING)
            db.create("dq_replaced", _REPLACED)
            existing = _count(db, "dq_existing")
            replaced = _count(db, "dq_replaced")
            old = {n: _rows_of(n, "dq_existing", existing) for n in _ROWS}
            minus = {n: self._counts(n, "dq_sources", old, "old") for n in _AGG}
            for name in _PER_RESOURCE:
                if replaced:
                    db.execute(f"DELETE FROM dq_{name} AS x WHERE {_in('dq_replaced')}")
                db.insert(f"dq_{name}", f"SELECT * FROM _cmio_day_{name}")
            db.insert("dq_messages", "SELECT * FROM _cmio_day_messages")
            db.execute(f"DELETE FROM dq_sources AS x WHERE {_in('dq_touched')}")
            db.insert("dq_sources", f"SELECT * FROM ({q.SOURCES}) AS x WHERE {_in('dq_touched')}")
            self._check_new()
            now = {n: _now_rows(n, existing > replaced) for n in _ROWS}
            plus = {n: self._counts(n, "dq_sources", now, "new") for n in _AGG}
            for name in _AGG:
                db.create(
                    f"dq_agg_{name}_new",
                    _sums(name, f"SELECT * FROM dq_agg_{name} UNION ALL {plus[name]}"
                                f" UNION ALL {_negated(name, minus[name])}"),
                )  # fmt: skip
                db.execute(f"DROP TABLE dq_agg_{name}")
                db.execute(f"ALTER TABLE dq_agg_{name}_new RENAME TO dq_agg_{name}")
            self._refresh_duplicates(new["patients"])
        return self.outputs()

    def _counts(self, name: str, sources: str, rows: Mapping[str, str], tag: str) -> str:
        """Counts of ``name`` over the given row queries, materialized now (the rows
        change later in the refresh) as ``dq_delta_<name>_<tag>``."""
        _, sql = _AGG[name]
        table = f"dq_delta_{name}_{tag}"
        self.db.create(table, _sums_plain(name, sql.format(src=sources, **rows)))
        return f"SELECT * FROM {table}"

    def _check_new(self) -> None:
        db = self.db
        pairs = db.query(
            "SELECT DISTINCT system, code FROM _cmio_day_coded AS c"
            " WHERE system IS NOT NULL AND code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
            " dq_checked AS k WHERE k.system = c.system AND k.code = c.code)"
        ).to_pylist()
        if pairs:
            checked = check_codes(((p["system"], p["code"]) for p in pairs), self.terminology)
            db.append("dq_checked", checked)
        units = db.query(
            f"SELECT DISTINCT code FROM _cmio_day_quantities AS c WHERE system = {_UCUM}"
            " AND code IS NOT NULL AND code NOT IN (SELECT code FROM dq_ucum)"
        ).to_pylist()
        if units:
            db.append("dq_ucum", check_units((u["code"] for u in units), self.ucum))

    def _refresh_duplicates(self, patients: pa.Table) -> None:
        if not patients.num_rows:
            return
        db = self.db
        with db.registered(_cmio_p=patients.select(["id"])):
            db.execute(
                "DELETE FROM dq_out_duplicates WHERE patient_a IN (SELECT id FROM _cmio_p)"
                " OR patient_b IN (SELECT id FROM _cmio_p)"
            )
            db.execute("DELETE FROM dq_patients WHERE id IN (SELECT id FROM _cmio_p)")
            db.insert("dq_patients", "SELECT * FROM _cmio_day_patients")
            db.insert("dq_out_duplicates", _DAY_PAIRS)


def data_quality_state(
    path: Path | str, inputs: Mapping[str, pa.Table], terminology: TerminologyResources,
    standards: Standards | None = None,
) -> tuple[dict[str, pa.Table], bool]:  # fmt: skip
    """Data-quality outputs kept in the DuckDB file ``path``: built from ``inputs`` the
    first time, later refreshed with ``inputs`` as the day's resources (the same
    ``standards`` each time).

    Returns:
        The outputs, and whether they were refreshed (False: built).
    """
    with StateDb(path) as db:
        state = DataQualityState(db, terminology, standards)
        if state.exists():
            return state.refresh(inputs), True
        return state.build(inputs), False


_TOUCHED = """
SELECT DISTINCT resource_type, id FROM _cmio_day_resources
UNION
SELECT SPLIT_PART(focus_ref, '/', 1), SUBSTRING(focus_ref, STRPOS(focus_ref, '/') + 1)
FROM _cmio_day_messages WHERE focus_ref LIKE '%/%'
"""
"""Resources whose rows or source may change: the day's, and those its messages name."""

_EXISTING = f"""
SELECT DISTINCT x.resource_type, x.id FROM dq_resources AS x WHERE {_in("dq_touched")}
"""
"""The touched resources already stored (their stored rows are counted out)."""

_REPLACED = f"""
SELECT DISTINCT x.resource_type, x.id FROM dq_existing AS x WHERE {_in("_cmio_day_resources")}
"""
"""The stored resources the day brings again (their stored rows are replaced)."""


def _count(db: StateDb, table: str) -> int:
    return int(db.query(f"SELECT COUNT(*) AS n FROM {table}")["n"][0].as_py())


def _rows_of(name: str, keys: str, any_keys: int) -> str:
    if not any_keys:
        return f"(SELECT * FROM dq_{name} LIMIT 0)"
    return f"(SELECT * FROM dq_{name} AS x WHERE {_in(keys)})"


def _now_rows(name: str, kept: bool) -> str:
    """The touched resources' rows after the day: the day's, and (``kept``) the stored
    rows of the touched resources the day did not bring."""
    if not kept:
        return f"_cmio_day_{name}"
    return (
        f"(SELECT * FROM _cmio_day_{name} UNION ALL SELECT * FROM dq_{name} AS x"
        f" WHERE {_in('dq_existing')} AND NOT {_in('dq_replaced')})"
    )


def _sums_plain(name: str, sql: str) -> str:
    keys, _ = _AGG[name]
    sums = ", ".join(f"CAST(SUM({c}) AS BIGINT) AS {c}" for c in _COUNTS[name])
    return f"SELECT {keys}, {sums} FROM ({sql}) AS d GROUP BY {keys}"


def _negated(name: str, sql: str) -> str:
    keys, _ = _AGG[name]
    negated = ", ".join(f"-{c} AS {c}" for c in _COUNTS[name])
    return f"SELECT {keys}, {negated} FROM ({sql}) AS m"


def _conform(table: pa.Table | None, empty: pa.Table) -> pa.Table:
    """``table`` with the stored table's columns and types (None: no rows)."""
    if table is None or not table.num_rows:
        return empty
    return pa.table([table[f.name].cast(f.type) for f in empty.schema], schema=empty.schema)
