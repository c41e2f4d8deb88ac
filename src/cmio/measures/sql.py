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
from collections.abc import Collection, Mapping, Sequence
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
    "row_wise",
    "shared_steps",
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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _constant_member(alias: str, pairs: Collection[tuple[str, str]]) -> str:
    """``alias.system, alias.code`` among known pairs, as constant lists a scan can filter
    on; TRUE or FALSE like the ``EXISTS`` form (never NULL)."""
    if not pairs:
        return "FALSE"
    by_system: dict[str, list[str]] = {}
    for system, code in sorted(set(pairs)):
        by_system.setdefault(system, []).append(code)
    codes = sorted({code for _, code in pairs})
    per_system = " OR ".join(
        f"({alias}.system = {_quote(system)} AND {alias}.code IN ({', '.join(map(_quote, listed))}))"
        for system, listed in by_system.items()
    )
    return (
        f"({alias}.system IS NOT NULL AND {alias}.code IS NOT NULL"
        f" AND {alias}.code IN ({', '.join(map(_quote, codes))}) AND ({per_system}))"
    )


def expand_macros(
    sql: str,
    period: Period,
    valuesets: set[str] | None = None,
    members: Mapping[str, Collection[tuple[str, str]]] | None = None,
) -> str:
    """Expand the macros of one SQL text (see the module docstring).

    Args:
        sql: measure SQL.
        period: the measurement period.
        valuesets: collects the value-set names ``{in:..}`` uses.
        members: the value sets' expansions (``(system, code)`` pairs by name), when known
            before the query runs: ``{in:..}`` then tests constant code lists (a filter
            the engine applies while scanning) instead of an ``EXISTS`` over
            ``mp_valueset``; the same rows.

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
        if members is not None and all(n in members for n in names):
            return _constant_member(alias, [pair for n in names for pair in members[n]])
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
    per_patient: tuple[str, ...] = ()
    """The steps that reduce a stratifier to one value per patient (small aggregates an
    engine running steps one by one keeps inside the final query)."""

    def without(self, names: Collection[str]) -> str:
        """The query with the named steps left out of its ``WITH`` clause: they are read
        from tables of those names (see :func:`shared_steps`)."""
        kept = [(name, sql) for name, sql in self.steps if name not in names]
        if not kept:
            return self.select
        return "WITH " + ",\n".join(f"{n} AS (\n{s}\n)" for n, s in kept) + "\n" + self.select


_WORD = re.compile(r"\w+")


def _references(sql: str, names: Sequence[str]) -> list[str]:
    """The names that occur in the SQL as whole words (like ``\bname\b``)."""
    words = set(_WORD.findall(sql))
    return [n for n in names if n in words]


def _views_in(sql: str) -> list[str]:
    return sorted(set(re.findall(r"\b(mp_[a-z_]+)\b", sql)) - {"mp_valueset"})


def measure_query(
    measure: MeasureDefinition,
    period: Period,
    library: Mapping[str, Any],
    members: Mapping[str, Collection[tuple[str, str]]] | None = None,
) -> CompiledMeasure:
    """The measure's query over the measure tables, in DuckDB's dialect.

    Args:
        measure: the definition.
        period: the measurement period.
        library: the common library (``define`` and ``stratifiers`` maps of SQL).
        members: value-set expansions to write into the query as constants
            (see :func:`expand_macros`).

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
    ctes = [(name, expand_macros(defines[name], period, valuesets, members)) for name in ordered]
    ctes += [(name, expand_macros(sql, period, valuesets, members)) for name, sql in parts]
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
        # one value per patient: a step of its own, so measures sharing the stratifier
        # share it (shared_steps)
        ctes.append(
            (
                f"strat_{name}_per_patient",
                f"SELECT patient_id, MIN(value) AS value FROM strat_{name} GROUP BY patient_id",
            )
        )
        columns.append(f"COALESCE(CAST(j_s_{name}.value AS VARCHAR), 'unknown') AS strat_{name}")
        joins.append(
            f"LEFT JOIN strat_{name}_per_patient AS j_s_{name}"
            f" ON j_s_{name}.patient_id = ip.patient_id"
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
        tuple(f"strat_{name}_per_patient" for name in measure.stratifiers),
    )


def _step_deps(compiled: CompiledMeasure) -> dict[str, list[str]]:
    names = [name for name, _ in compiled.steps]
    return {name: [d for d in _references(sql, names) if d != name] for name, sql in compiled.steps}


def shared_steps(compiled: Sequence[CompiledMeasure]) -> list[tuple[str, str]]:
    """The steps several measures compute alike, to compute once for all of them.

    A step (a define or a stratifier's SQL) is shared when two or more of the measures
    have it with the same SQL text and every step it reads is shared too (so a measure's
    own define of a library name is never shared). Run in the order returned (each after
    the steps it reads) into tables of their names, then :meth:`CompiledMeasure.without`
    those names gives each measure's remaining query: the same rows as the full query.
    """
    texts: dict[str, set[str]] = {}
    users: dict[str, int] = {}
    deps: dict[str, set[str]] = {}
    for query in compiled:
        for name, sql in query.steps:
            texts.setdefault(name, set()).add(sql)
            users[name] = users.get(name, 0) + 1
        for name, used in _step_deps(query).items():
            deps.setdefault(name, set()).update(used)
    shared = {name for name in texts if len(texts[name]) == 1 and users[name] > 1}
    changed = True
    while changed:
        dropped = {name for name in shared if not deps[name] <= shared}
        shared -= dropped
        changed = bool(dropped)
    out: dict[str, str] = {}
    for query in compiled:
        for name, sql in query.steps:
            if name in shared and name not in out:
                out[name] = sql
    return list(out.items())


_SET_WISE = re.compile(r"\b(GROUP\s+BY|DISTINCT|OVER|LIMIT|UNION(?!\s+ALL))\b", re.IGNORECASE)


def row_wise(sql: str) -> bool:
    """Whether a step only filters, projects and joins rows (no grouping, window,
    ``DISTINCT`` or de-duplicating ``UNION``): cheaper recomputed inside each query that
    reads it, where the reader's filters reach the table scans, than stored."""
    return _SET_WISE.search(sql) is None


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
