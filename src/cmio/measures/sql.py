"""Population SQL: the macros measure SQL may use, and the one query per measure.

Measure SQL is written in DuckDB's dialect over the measure tables
(:mod:`cmio.measures.views`) and the value-set table ``mp_valueset``
(:mod:`cmio.measures.valuesets`), then rendered for PostgreSQL and Spark by sqlglot
(https://sqlglot.com/sqlglot/transpile.html). Before parsing, these macros expand:

* ``{start}``, ``{end}``: the measurement period's first and last day (DATE literals);
  with offsets, ``{start-15m}``, ``{end-9y}``, ``{start+6m-1d}`` (years, months, days);
* ``{day:expr}``: the calendar day of a FHIR date/dateTime text (its first ten
  characters, the local date; NULL for partial dates);
* ``{age_start:expr}``, ``{age_end:expr}``: whole years from a birth date to the first
  / last day of the period (CQL ``AgeInYearsAt``);
* ``{in:alias:Name1,Name2}``: ``alias.system, alias.code`` is a member of one of the
  named value sets (an ``EXISTS`` over ``mp_valueset``, never a per-row call);
* ``{vs:Name1,Name2}``: the quoted names, for joins on ``mp_valueset.valueset``.

A population's SQL returns ``patient_id`` rows; it may name earlier populations
(``initial_population``, ``denominator`` ...) and defines as tables. The query
:func:`measure_query` builds returns one row per initial-population patient with one
boolean column per population (the raw criteria), the stratifier values, the
continuous-variable observation and the care-gap ``since`` date.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlglot

from cmio.measures.definition import MeasureDefinition, MeasureDefinitionError

__all__ = [
    "CompiledMeasure",
    "Period",
    "expand_macros",
    "measure_query",
    "population_column",
    "render",
]

_DATE = re.compile(r"\{(start|end)((?:[+-]\d+[ymd])*)\}")
_OFFSET = re.compile(r"([+-])(\d+)([ymd])")
_DAY = re.compile(r"\{day:([^{}]+)\}")
_AGE = re.compile(r"\{age_(start|end):([^{}]+)\}")
_IN = re.compile(r"\{in:([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_,]+)\}")
_VS = re.compile(r"\{vs:([A-Za-z0-9_,]+)\}")
_LEFT = re.compile(r"\{[a-z_]+[:+\-}]")


@dataclass(frozen=True, slots=True)
class Period:
    """The measurement period (whole days, both ends included).

    Raises:
        ValueError: the end is before the start.
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"measurement period ends ({self.end}) before it starts")

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-01-01/2026-12-31`` (ISO 8601 interval of two dates)."""
        try:
            start, end = text.split("/")
            return cls(date.fromisoformat(start.strip()[:10]), date.fromisoformat(end.strip()[:10]))
        except ValueError as exc:
            raise ValueError(f"period {text!r}: expected YYYY-MM-DD/YYYY-MM-DD ({exc})") from exc


def _shift(day: date, sign: str, amount: int, unit: str) -> date:
    amount = amount if sign == "+" else -amount
    if unit == "d":
        return date.fromordinal(day.toordinal() + amount)
    months = day.year * 12 + day.month - 1 + (amount * 12 if unit == "y" else amount)
    year, month = divmod(months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _literal(day: date) -> str:
    return f"CAST('{day.isoformat()}' AS DATE)"


def _day(expr: str) -> str:
    return f"CAST(CASE WHEN LENGTH({expr}) >= 10 THEN SUBSTR({expr}, 1, 10) END AS DATE)"


def expand_macros(sql: str, period: Period, valuesets: set[str] | None = None) -> str:
    """Expand the macros of one SQL text (see the module docstring).

    Args:
        sql: measure SQL.
        period: the measurement period.
        valuesets: collects the value-set names ``{in:..}`` uses.

    Raises:
        MeasureDefinitionError: a macro left unexpanded (misspelled).
    """

    def dates(match: re.Match[str]) -> str:
        day = period.start if match.group(1) == "start" else period.end
        for sign, amount, unit in _OFFSET.findall(match.group(2)):
            day = _shift(day, sign, int(amount), unit)
        return _literal(day)

    def age(match: re.Match[str]) -> str:
        at = period.start if match.group(1) == "start" else period.end
        born = _day(match.group(2).strip())
        return (
            f"({at.year} - EXTRACT(YEAR FROM {born}) - CASE WHEN EXTRACT(MONTH FROM {born}) * 100"
            f" + EXTRACT(DAY FROM {born}) > {at.month * 100 + at.day} THEN 1 ELSE 0 END)"
        )

    def member(match: re.Match[str]) -> str:
        alias, names = match.group(1), [n for n in match.group(2).split(",") if n]
        if valuesets is not None:
            valuesets.update(names)
        quoted = ", ".join(f"'{n}'" for n in names)
        return (
            f"EXISTS (SELECT 1 FROM mp_valueset AS _vs WHERE _vs.valueset IN ({quoted})"
            f" AND _vs.system = {alias}.system AND _vs.code = {alias}.code)"
        )

    def names(match: re.Match[str]) -> str:
        listed = [n for n in match.group(1).split(",") if n]
        if valuesets is not None:
            valuesets.update(listed)
        return ", ".join(f"'{n}'" for n in listed)

    out = _DATE.sub(dates, sql)
    out = _AGE.sub(age, out)
    out = _DAY.sub(lambda m: _day(m.group(1).strip()), out)
    out = _IN.sub(member, out)
    out = _VS.sub(names, out)
    left = _LEFT.search(out)
    if left is not None:
        raise MeasureDefinitionError(
            f"unknown macro near {out[left.start() : left.start() + 30]!r}"
        )
    return out


def population_column(code: str) -> str:
    """The SQL name of a population (``denominator-exclusion`` -> ``denominator_exclusion``)."""
    return code.replace("-", "_")


@dataclass(frozen=True, slots=True)
class CompiledMeasure:
    """A measure's query (DuckDB dialect) and what it reads.

    Attributes:
        sql: the query (one row per initial-population patient).
        views: the measure tables it reads.
        valuesets: the value sets it joins.
        populations: the population codes, in order.
        stratifiers: the stratifier names (output columns ``strat_<name>``).
        steps: the query's CTEs as ``(name, SELECT)`` in order, for engines that run them
            one by one (Spark); ``select`` is the final SELECT over them.
    """

    sql: str
    views: tuple[str, ...]
    valuesets: tuple[str, ...]
    populations: tuple[str, ...]
    stratifiers: tuple[str, ...]
    steps: tuple[tuple[str, str], ...] = ()
    select: str = ""


def _references(sql: str, names: Sequence[str]) -> list[str]:
    return [n for n in names if re.search(rf"\b{re.escape(n)}\b", sql)]


def _views_in(sql: str) -> list[str]:
    return sorted(set(re.findall(r"\b(mp_[a-z_]+)\b", sql)) - {"mp_valueset"})


def measure_query(
    measure: MeasureDefinition, period: Period, library: Mapping[str, Any]
) -> CompiledMeasure:
    """The measure's query over the measure tables, in DuckDB's dialect.

    Args:
        measure: the definition.
        period: the measurement period.
        library: the common library (``define`` and ``stratifiers`` maps of SQL).

    Raises:
        MeasureDefinitionError: an unknown stratifier, a define named like a population,
            or an unknown macro.
    """
    defines: dict[str, str] = dict(library.get("define") or {})
    defines.update(measure.define)
    reserved = {population_column(c) for c in measure.populations}
    for name in defines:
        if name in reserved:
            raise MeasureDefinitionError(f"{name} is a population name", f"define.{name}")
    strat_sql = dict(library.get("stratifiers") or {})
    for name in measure.stratifiers:
        if name not in strat_sql:
            raise MeasureDefinitionError(f"unknown stratifier {name!r}", "stratifiers")
    parts: list[tuple[str, str]] = [
        (population_column(code), sql) for code, sql in measure.populations.items()
    ]
    if measure.observation is not None:
        parts.append(("measure_observation", measure.observation))
    parts += [(f"strat_{name}", strat_sql[name]) for name in measure.stratifiers]
    if measure.gap is not None and measure.gap.since is not None:
        parts.append(("gap_since", measure.gap.since))
    # defines in dependency order (depth first), only those used
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise MeasureDefinitionError(f"circular define {name}", f"define.{name}")
        visiting.add(name)
        for used in _references(defines[name], [d for d in defines if d != name]):
            visit(used)
        visiting.discard(name)
        ordered.append(name)

    for _, sql in parts:
        for used in _references(sql, list(defines)):
            visit(used)
    valuesets: set[str] = set()
    ctes = [(name, expand_macros(defines[name], period, valuesets)) for name in ordered]
    ctes += [(name, expand_macros(sql, period, valuesets)) for name, sql in parts]
    views = sorted({"mp_patient", *measure.views, *(v for _, sql in ctes for v in _views_in(sql))})
    columns = ["ip.patient_id AS patient_id"]
    joins = []
    for code in measure.populations:
        column = population_column(code)
        if code == "initial-population":
            columns.append("TRUE AS initial_population")
            continue
        columns.append(f"(j_{column}.patient_id IS NOT NULL) AS {column}")
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT patient_id FROM {column}) AS j_{column}"
            f" ON j_{column}.patient_id = ip.patient_id"
        )
    if measure.observation is not None:
        columns.append("CAST(j_obs.value AS DOUBLE) AS measure_observation")
        joins.append(
            "LEFT JOIN (SELECT patient_id, MAX(value) AS value FROM measure_observation"
            " GROUP BY patient_id) AS j_obs ON j_obs.patient_id = ip.patient_id"
        )
    for name in measure.stratifiers:
        columns.append(f"COALESCE(CAST(j_s_{name}.value AS VARCHAR), 'unknown') AS strat_{name}")
        joins.append(
            f"LEFT JOIN (SELECT patient_id, MIN(value) AS value FROM strat_{name}"
            f" GROUP BY patient_id) AS j_s_{name} ON j_s_{name}.patient_id = ip.patient_id"
        )
    if measure.gap is not None and measure.gap.since is not None:
        columns.append("CAST(j_gap.since AS VARCHAR) AS gap_since")
        joins.append(
            "LEFT JOIN (SELECT patient_id, MAX(since) AS since FROM gap_since"
            " GROUP BY patient_id) AS j_gap ON j_gap.patient_id = ip.patient_id"
        )
    with_clause = ",\n".join(f"{name} AS (\n{sql.strip()}\n)" for name, sql in ctes)
    select = (
        f"SELECT {', '.join(columns)}\n"
        "FROM (SELECT DISTINCT patient_id FROM initial_population"
        " WHERE patient_id IS NOT NULL) AS ip\n" + "\n".join(joins) + "\nORDER BY ip.patient_id"
    )
    return CompiledMeasure(
        f"WITH {with_clause}\n{select}",
        tuple(views),
        tuple(sorted(valuesets)),
        tuple(measure.populations),
        measure.stratifiers,
        tuple((name, sql.strip()) for name, sql in ctes),
        select,
    )


def render(sql: str, dialect: str) -> str:
    """The query in another engine's SQL (``duckdb``, ``postgres``, ``spark``).

    Raises:
        MeasureDefinitionError: sqlglot cannot parse the query.
    """
    if dialect == "duckdb":
        return sql
    try:
        return ";\n".join(sqlglot.transpile(sql, read="duckdb", write=dialect))
    except sqlglot.errors.ParseError as exc:
        raise MeasureDefinitionError(f"SQL does not parse: {exc}") from exc
