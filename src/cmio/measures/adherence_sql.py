"""The SQL of :mod:`cmio.measures.adherence` (DuckDB dialect, rendered by sqlglot).

Inputs are the ``dq_*`` tables :func:`cmio.measures.adherence.data_quality` loads;
each output query is materialized as ``dq_out_<name>`` and read back ordered.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DISTINCT_CODES", "DISTINCT_UNITS", "ORDER", "SCORE", "SOURCES", "TABLES"]

_UCUM = "'http://unitsofmeasure.org'"
_SRC = "COALESCE(src.source, 'unspecified')"
_JOIN_SRC = (
    "LEFT JOIN dq_sources AS src ON src.resource_type = {0}.resource_type AND src.id = {0}.id"
)

SOURCES = """
WITH meta AS (
  SELECT resource_type, id, MIN(meta_source) AS source FROM dq_resources
  WHERE meta_source IS NOT NULL GROUP BY resource_type, id
), focus AS (
  SELECT SPLIT_PART(focus_ref, '/', 1) AS resource_type,
    SUBSTRING(focus_ref, STRPOS(focus_ref, '/') + 1) AS id,
    MIN('hl7v2:' || COALESCE(sender, endpoint, 'unknown')) AS source
  FROM dq_messages WHERE focus_ref LIKE '%/%'
  GROUP BY SPLIT_PART(focus_ref, '/', 1), SUBSTRING(focus_ref, STRPOS(focus_ref, '/') + 1)
), hl7 AS (
  SELECT f.resource_type, f.id, f.source FROM focus AS f
  WHERE EXISTS (SELECT 1 FROM dq_resources AS r
                WHERE r.resource_type = f.resource_type AND r.id = f.id)
)
SELECT COALESCE(meta.resource_type, hl7.resource_type) AS resource_type,
  COALESCE(meta.id, hl7.id) AS id, COALESCE(meta.source, hl7.source) AS source
FROM meta FULL OUTER JOIN hl7 ON hl7.resource_type = meta.resource_type AND hl7.id = meta.id
"""
"""Source system of the resources that have one: ``meta.source``, else the HL7 v2 sender
of a MessageHeader whose ``focus`` names it (``Type/id``). Resources not listed are
``unspecified`` (the outputs join this table and default to it), so when few resources
carry a source the joins of the large per-element tables probe a small table."""

DISTINCT_CODES = """
SELECT DISTINCT system, code FROM dq_coded WHERE system IS NOT NULL AND code IS NOT NULL
"""

DISTINCT_UNITS = f"""
SELECT DISTINCT code FROM dq_quantities WHERE system = {_UCUM} AND code IS NOT NULL
"""

_COUNT = "CAST(SUM(CASE WHEN {0} THEN 1 ELSE 0 END) AS BIGINT)"

TABLES: Mapping[str, str] = MappingProxyType(
    {
        "coding": f"""
WITH el AS (
  SELECT c.resource_type, c.id, c.element, c.cc_index,
    MAX(CASE WHEN s.system IS NULL THEN 0 ELSE 1 END) AS standard
  FROM dq_coded AS c
  LEFT JOIN dq_standard AS s ON s.element = c.element AND s.system = c.system
  GROUP BY c.resource_type, c.id, c.element, c.cc_index
)
SELECT el.resource_type, {_SRC} AS source, el.element, COUNT(*) AS elements,
  CAST(SUM(el.standard) AS BIGINT) AS standard_elements,
  CAST(SUM(el.standard) AS DOUBLE) / COUNT(*) AS standard_share
FROM el {_JOIN_SRC.format("el")}
GROUP BY el.resource_type, {_SRC}, el.element
""",
        "codes": f"""
SELECT c.resource_type, {_SRC} AS source, COUNT(*) AS codings,
  {_COUNT.format("k.status = 'valid'")} AS valid,
  {_COUNT.format("k.status = 'invalid'")} AS invalid,
  {_COUNT.format("k.status = 'deprecated'")} AS deprecated,
  {_COUNT.format("k.status = 'unchecked'")} AS unchecked,
  CASE WHEN SUM(CASE WHEN k.status = 'unchecked' THEN 0 ELSE 1 END) > 0
    THEN CAST(SUM(CASE WHEN k.status = 'valid' THEN 1 ELSE 0 END) AS DOUBLE)
      / SUM(CASE WHEN k.status = 'unchecked' THEN 0 ELSE 1 END) END AS valid_share
FROM dq_coded AS c JOIN dq_checked AS k ON k.system = c.system AND k.code = c.code
{_JOIN_SRC.format("c")}
GROUP BY c.resource_type, {_SRC}
""",
        "code_issues": """
SELECT c.resource_type, c.element, k.system, k.code, k.status, k.reason, COUNT(*) AS uses
FROM dq_coded AS c JOIN dq_checked AS k ON k.system = c.system AND k.code = c.code
WHERE k.status IN ('invalid', 'deprecated')
GROUP BY c.resource_type, c.element, k.system, k.code, k.status, k.reason
""",
        "required": f"""
SELECT r.resource_type, {_SRC} AS source, r.element, COUNT(*) AS resources,
  {_COUNT.format("NOT r.present")} AS missing,
  CAST(SUM(CASE WHEN r.present THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS present_share
FROM dq_required AS r {_JOIN_SRC.format("r")}
GROUP BY r.resource_type, {_SRC}, r.element
""",
        "units": f"""
WITH q AS (
  SELECT q.resource_type, q.id,
    CASE WHEN q.system = {_UCUM} AND u.code IS NOT NULL AND u.reason IS NULL THEN 1 ELSE 0 END
      AS ok
  FROM dq_quantities AS q
  LEFT JOIN dq_ucum AS u ON u.code = q.code AND q.system = {_UCUM}
  WHERE q.unit IS NOT NULL OR q.code IS NOT NULL OR q.system IS NOT NULL
)
SELECT q.resource_type, {_SRC} AS source, COUNT(*) AS quantities,
  CAST(SUM(q.ok) AS BIGINT) AS conformant, CAST(SUM(q.ok) AS DOUBLE) / COUNT(*) AS ucum_share
FROM q {_JOIN_SRC.format("q")}
GROUP BY q.resource_type, {_SRC}
""",
        "unit_issues": f"""
SELECT q.unit, q.system, q.code,
  CASE WHEN q.system IS NULL OR q.system <> {_UCUM} THEN 'not the UCUM system'
       WHEN q.code IS NULL THEN 'no UCUM code' ELSE u.reason END AS reason,
  COUNT(*) AS uses
FROM dq_quantities AS q LEFT JOIN dq_ucum AS u ON u.code = q.code AND q.system = {_UCUM}
WHERE (q.unit IS NOT NULL OR q.code IS NOT NULL OR q.system IS NOT NULL)
  AND NOT (q.system = {_UCUM} AND u.code IS NOT NULL AND u.reason IS NULL)
GROUP BY q.unit, q.system, q.code,
  CASE WHEN q.system IS NULL OR q.system <> {_UCUM} THEN 'not the UCUM system'
       WHEN q.code IS NULL THEN 'no UCUM code' ELSE u.reason END
""",
    }
)
"""Output tables (materialized as ``dq_out_<name>``)."""

ORDER: Mapping[str, str] = MappingProxyType(
    {
        "coding": "resource_type, source, element",
        "codes": "resource_type, source",
        "code_issues": "resource_type, element, system, code",
        "required": "resource_type, source, element",
        "units": "resource_type, source",
        "unit_issues": "unit, system, code",
    }
)

_PARTS = MappingProxyType(
    {
        "coding": ("dq_out_coding", "SUM(standard_elements)", "SUM(elements)"),
        "validity": ("dq_out_codes", "SUM(valid)", "SUM(valid + invalid + deprecated)"),
        "completeness": ("dq_out_required", "SUM(resources - missing)", "SUM(resources)"),
        "ucum": ("dq_out_units", "SUM(conformant)", "SUM(quantities)"),
    }
)


def _part(name: str, overall: bool) -> str:
    table, num, den = _PARTS[name]
    keys = "'*' AS resource_type, '*' AS source" if overall else "resource_type, source"
    group = "" if overall else "GROUP BY resource_type, source"
    return (
        f"SELECT {keys}, CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / {den} END AS {name}"
        f" FROM {table} {group}"
    )


def _score(overall: bool) -> str:
    names = list(_PARTS)
    keys = " UNION ".join(
        f"SELECT resource_type, source FROM ({_part(n, overall)}) AS k{i}"
        for i, n in enumerate(names)
    )
    joins = "\n".join(
        f"LEFT JOIN ({_part(n, overall)}) AS {n} ON {n}.resource_type = k.resource_type"
        f" AND {n}.source = k.source"
        for n in names
    )
    present = " + ".join(f"CASE WHEN {n}.{n} IS NULL THEN 0 ELSE 1 END" for n in names)
    total = " + ".join(f"COALESCE({n}.{n}, 0)" for n in names)
    columns = ", ".join(f"{n}.{n} AS {n}_share" for n in names)
    return f"""
SELECT k.resource_type, k.source, {columns},
  CASE WHEN {present} > 0 THEN 100 * ({total}) / ({present}) END AS score
FROM ({keys}) AS k
{joins}
"""


SCORE = f"""
SELECT * FROM ({_score(False)}) AS a
UNION ALL
SELECT * FROM ({_score(True)}) AS b
ORDER BY resource_type, source
"""
"""Data-quality score: 100 x the mean of the available shares (standard coding, valid
codes, required elements present, UCUM conformance), per resource type and source,
and overall (``*``, pooled over every element)."""
