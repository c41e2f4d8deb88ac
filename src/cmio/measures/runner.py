"""Evaluate measures: materialize the tables, run the population SQL, score.

:class:`MeasureRunner` compiles each measure (:func:`cmio.measures.sql.measure_query`),
materializes the union of the measure tables once on the engine, loads the value-set
expansion (:func:`cmio.measures.valuesets.expand_valuesets`) as ``mp_valueset``, runs
each query in the engine's dialect, then applies the population semantics of
https://hl7.org/fhir/R4/measure-definitions.html#Measure.group.population.code
(and the CQF measure IG's proportion rules): the denominator is within the initial
population, exclusions within the denominator, the numerator within the denominator
less its exclusions, numerator exclusions within the numerator, exceptions within the
denominator less exclusions and numerator. The result is pyarrow tables: one row per
initial-population patient (:attr:`MeasureResult.members`), and counts per stratum
(:attr:`MeasureResult.strata`).

Several measures evaluated together share their common steps
(:func:`cmio.measures.sql.shared_steps`: the library defines, stratifiers): on engines
that offer ``create_temporary`` (DuckDB, Spark) each is computed once, as a temporary
table, or as a temporary view when it only filters and projects rows
(:func:`~cmio.measures.sql.row_wise`, so each reader's filters reach the scans), before
the measures' remaining queries (on Spark one step at a time, ``query_steps``). On
DuckDB, value-set membership is written as constant code lists once the expansion is
known (``constant_valuesets``). Both give the rows of the plain per-measure queries
(``tests/measures/test_batch.py`` checks it per patient).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cmio.measures.definition import MeasureDefinition, common_library
from cmio.measures.engines import MeasureEngine, open_engine
from cmio.measures.sql import (
    CompiledMeasure,
    Period,
    measure_query,
    population_column,
    render,
    row_wise,
    shared_steps,
)
from cmio.measures.valuesets import builtin_valuesets, expand_valuesets
from cmio.measures.views import measure_views
from cmio.terminology.service import TerminologyService

__all__ = ["MeasureResult", "MeasureRunner", "evaluate_measures", "result_from_members"]

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class MeasureResult:
    """One measure evaluated over one period.

    Attributes:
        measure: the definition.
        period: the measurement period.
        members: one row per initial-population patient: ``patient_id``, one boolean per
            population (final membership), ``measure_observation`` (continuous variable),
            ``strat_<name>`` per stratifier, ``gap_since`` and ``care_gap``.
        strata: ``stratifier``, ``stratum``, one count per population, ``score``.
        counts: the population counts.
        score: the measure score (None when the denominator is empty).
    """

    measure: MeasureDefinition
    period: Period
    members: pa.Table
    strata: pa.Table
    counts: Mapping[str, int]
    score: float | None

    def patients(self, population: str) -> list[str]:
        """The patients of one population (a code such as ``numerator``), sorted."""
        column = population_column(population)
        if column not in self.members.column_names:
            return []
        chosen = self.members.filter(self.members[column])
        return sorted(str(p) for p in chosen["patient_id"].to_pylist())

    def row(self, patient_id: str) -> dict[str, Any] | None:
        """One patient's row of :attr:`members` (None: not in the initial population)."""
        chosen = self.members.filter(pc.equal(self.members["patient_id"], patient_id))
        return chosen.to_pylist()[0] if chosen.num_rows else None


def _flag(table: pa.Table, column: str) -> pa.ChunkedArray:
    if column not in table.column_names:
        return pa.chunked_array([pa.array([False] * table.num_rows, pa.bool_())])
    return pc.fill_null(table[column].cast(pa.bool_()), False)


def _semantics(measure: MeasureDefinition, raw: pa.Table) -> dict[str, pa.ChunkedArray]:
    """Final membership from the raw criteria (the CQF population rules)."""
    codes = measure.populations
    flags: dict[str, pa.ChunkedArray] = {"initial_population": _flag(raw, "initial_population")}
    ip = flags["initial_population"]
    if measure.scoring == "continuous-variable":
        mp = pc.and_(_flag(raw, "measure_population"), ip)
        flags["measure_population"] = mp
        if "measure-population-exclusion" in codes:
            flags["measure_population_exclusion"] = pc.and_(
                _flag(raw, "measure_population_exclusion"), mp
            )
        return flags
    den = pc.and_(_flag(raw, "denominator"), ip)
    flags["denominator"] = den
    denex = pc.and_(_flag(raw, "denominator_exclusion"), den)
    if "denominator-exclusion" in codes:
        flags["denominator_exclusion"] = denex
    if measure.scoring == "ratio":
        num = pc.and_(_flag(raw, "numerator"), ip)
    else:
        num = pc.and_(pc.and_(_flag(raw, "numerator"), den), pc.invert(denex))
    flags["numerator"] = num
    if "numerator-exclusion" in codes:
        flags["numerator_exclusion"] = pc.and_(_flag(raw, "numerator_exclusion"), num)
    if "denominator-exception" in codes:
        open_den = pc.and_(pc.and_(den, pc.invert(denex)), pc.invert(num))
        flags["denominator_exception"] = pc.and_(_flag(raw, "denominator_exception"), open_den)
    return flags


def _count(flags: Mapping[str, Any], name: str) -> int:
    array = flags.get(name)
    return int(pc.sum(array.cast(pa.int64())).as_py() or 0) if array is not None else 0


def _score(
    measure: MeasureDefinition, counts: Mapping[str, int], values: list[float]
) -> float | None:
    if measure.scoring == "continuous-variable":
        if not values:
            return None
        aggregate = measure.aggregate
        if aggregate == "sum":
            return float(sum(values))
        if aggregate == "median":
            return float(statistics.median(values))
        if aggregate == "min":
            return float(min(values))
        if aggregate == "max":
            return float(max(values))
        if aggregate == "count":
            return float(len(values))
        return statistics.fmean(values)
    numerator = counts.get("numerator", 0) - counts.get("numerator_exclusion", 0)
    denominator = counts.get("denominator", 0) - counts.get("denominator_exclusion", 0)
    if measure.scoring == "proportion":
        denominator -= counts.get("denominator_exception", 0)
    return numerator / denominator if denominator > 0 else None


def _observed(members: pa.Table) -> list[float]:
    if "measure_observation" not in members.column_names:
        return []
    chosen = members.filter(_flag(members, "measure_population"))
    if "measure_population_exclusion" in chosen.column_names:
        chosen = chosen.filter(pc.invert(_flag(chosen, "measure_population_exclusion")))
    return [float(v) for v in chosen["measure_observation"].to_pylist() if v is not None]


def _finish(
    measure: MeasureDefinition, compiled: CompiledMeasure, period: Period, raw: pa.Table
) -> MeasureResult:
    flags = _semantics(measure, raw)
    columns: dict[str, Any] = {"patient_id": raw["patient_id"].cast(pa.string())}
    columns.update(flags)
    if measure.observation is not None:
        columns["measure_observation"] = raw["measure_observation"].cast(pa.float64())
    for name in compiled.stratifiers:
        columns[f"strat_{name}"] = raw[f"strat_{name}"].cast(pa.string())
    if "gap_since" in raw.column_names:
        columns["gap_since"] = raw["gap_since"].cast(pa.string())
    if measure.scoring == "continuous-variable":
        gap = pa.chunked_array([pa.array([False] * raw.num_rows, pa.bool_())])
    elif measure.improvement == "decrease":
        gap = flags["numerator"]
    else:
        gap = pc.and_(flags["denominator"], pc.invert(flags["numerator"]))
        for other in ("denominator_exclusion", "denominator_exception"):
            if other in flags:
                gap = pc.and_(gap, pc.invert(flags[other]))
    columns["care_gap"] = gap
    return result_from_members(measure, period, pa.table(columns))


_POPULATIONS = (
    "initial_population",
    "measure_population",
    "measure_population_exclusion",
    "denominator",
    "denominator_exclusion",
    "numerator",
    "numerator_exclusion",
    "denominator_exception",
)


def result_from_members(
    measure: MeasureDefinition, period: Period, members: pa.Table
) -> MeasureResult:
    """Counts, score and strata of a membership table (see :attr:`MeasureResult.members`);
    used after evaluation and when rows of some patients are replaced."""
    names = [c for c in members.column_names if c in _POPULATIONS]
    flags = {name: members[name] for name in names}
    counts = {name: _count(flags, name) for name in names}
    score = _score(measure, counts, _observed(members))
    strata = _strata(measure, members, names)
    return MeasureResult(measure, period, members, strata, counts, score)


def _grouped(
    measure: MeasureDefinition, stratifier: str, members: pa.Table, names: list[str]
) -> list[dict[str, Any]]:
    """The strata of one stratifier in one pass (a hash aggregate of the population
    flags); for scorings whose score follows from the counts."""
    column = f"strat_{stratifier}"
    table = pa.table(
        {"_stratum": members[column], **{n: members[n].cast(pa.int64()) for n in names}}
    )
    grouped = table.group_by("_stratum").aggregate([(n, "sum") for n in names])
    grouped = grouped.sort_by("_stratum")
    sums = {n: grouped[f"{n}_sum"].to_pylist() for n in names}
    rows = []
    for index, stratum in enumerate(grouped["_stratum"].to_pylist()):
        counts = {n: int(sums[n][index] or 0) for n in names}
        row: dict[str, Any] = {"stratifier": stratifier, "stratum": stratum, **counts}
        row["score"] = _score(measure, counts, [])
        rows.append(row)
    return rows


def _strata(measure: MeasureDefinition, members: pa.Table, names: list[str]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for stratifier in measure.stratifiers:
        column = f"strat_{stratifier}"
        if measure.scoring != "continuous-variable" and not members[column].null_count:
            rows += _grouped(measure, stratifier, members, names)
            continue
        for stratum in sorted(set(members[column].to_pylist())):
            part = members.filter(pc.equal(members[column], stratum))
            counts = {n: _count({n: part[n]}, n) for n in names}
            row: dict[str, Any] = {"stratifier": stratifier, "stratum": stratum, **counts}
            row["score"] = _score(measure, counts, _observed(part))
            rows.append(row)
    fields = [pa.field("stratifier", pa.string()), pa.field("stratum", pa.string())]
    fields += [pa.field(n, pa.int64()) for n in names] + [pa.field("score", pa.float64())]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _members(expansion: pa.Table) -> dict[str, list[tuple[str, str]]]:
    """The expansion table as ``(system, code)`` pairs per value-set name."""
    out: dict[str, list[tuple[str, str]]] = {}
    columns = zip(
        expansion["valueset"].to_pylist(),
        expansion["system"].to_pylist(),
        expansion["code"].to_pylist(),
        strict=True,
    )
    for name, system, code in columns:
        bucket = out.setdefault(str(name), [])
        if system is not None and code is not None:
            bucket.append((str(system), str(code)))
    return out


class MeasureRunner:
    """Evaluates measures on one engine.

    Args:
        engine: the engine (see :func:`cmio.measures.engines.open_engine`).
        valuesets: the ValueSets by name (default: the shipped ones).
        terminology: the terminology service expanding them (default: a bare one).
        library: the common defines and stratifiers (default: the shipped ones).
        expansions: the cache of value-set expansion tables (keyed by the value-set names
            and the terminology service); by default the runner's own, so evaluating
            several periods with one runner (trend points) expands each value set once;
            pass a dict to keep it across runners
            (:class:`cmio.measures.incremental.MeasureTables` does).
    """

    def __init__(
        self,
        engine: MeasureEngine,
        *,
        valuesets: Mapping[str, Mapping[str, Any]] | None = None,
        terminology: TerminologyService | None = None,
        library: Mapping[str, Any] | None = None,
        expansions: dict[tuple[Any, ...], pa.Table] | None = None,
    ) -> None:
        self.engine = engine
        self.expansions = expansions if expansions is not None else {}
        self.valuesets = dict(valuesets) if valuesets is not None else builtin_valuesets()
        self.terminology = terminology
        self.library = library if library is not None else common_library()
        self._loaded: set[str] = set()

    def compile(self, measure: MeasureDefinition, period: Period) -> CompiledMeasure:
        """The measure's query for the period (DuckDB dialect)."""
        return measure_query(measure, period, self.library)

    def prepare(self, compiled: Sequence[CompiledMeasure], source: Any) -> pa.Table:
        """Materialize the tables and value sets the compiled measures need (once each);
        returns the value-set expansion table (``mp_valueset``)."""
        views = sorted({v for c in compiled for v in c.views} - self._loaded)
        if views:
            self.engine.load_views(measure_views(views), source)
            self._loaded.update(views)
        valuesets = sorted({v for c in compiled for v in c.valuesets})
        key = (self.terminology, *valuesets)
        table = self.expansions.get(key)
        if table is None:
            table = expand_valuesets(valuesets, self.valuesets, self.terminology)
            self.expansions[key] = table
        self.engine.load_table("mp_valueset", table)
        return table

    def evaluate(
        self,
        measures: Sequence[MeasureDefinition],
        period: Period,
        source: Any,
        *,
        progress: Progress | None = None,
    ) -> list[MeasureResult]:
        """Evaluate measures over a source (folder, store or resources).

        Args:
            measures: the definitions.
            period: the measurement period.
            source: what :func:`cmio.views.run` reads (ignored for tables already loaded).
            progress: called with a label after each step (tables, then each measure).

        Raises:
            MeasureDefinitionError: a measure's SQL is invalid.
            ValueSetError: a value set is unknown or cannot be expanded.
        """
        compiled = [self.compile(m, period) for m in measures]
        expansion = self.prepare(compiled, source)
        if getattr(self.engine, "constant_valuesets", False):
            members = _members(expansion)
            compiled = [measure_query(m, period, self.library, members) for m in measures]
        if progress is not None:
            progress("tables")
        dialect = self.engine.dialect
        create = getattr(self.engine, "create_temporary", None)
        shared = shared_steps(compiled) if create is not None else []
        created: list[str] = []
        results = []
        try:
            for name, sql in shared:
                assert create is not None
                create(name, render(sql, dialect), view=row_wise(sql))
                created.append(name)
            for measure, query in zip(measures, compiled, strict=True):
                stepwise = getattr(self.engine, "query_steps", None)
                if stepwise is not None:
                    own = [
                        (name, sql)
                        for name, sql in query.steps
                        if name not in query.per_patient and name not in created
                    ]
                    steps = [(name, render(sql, dialect)) for name, sql in own]
                    final = query.without([*created, *(name for name, _ in own)])
                    views = {name for name, sql in own if row_wise(sql)}
                    raw = stepwise(steps, render(final, dialect), views)
                else:
                    raw = self.engine.query(render(query.without(created), dialect))
                results.append(_finish(measure, query, period, raw))
                if progress is not None:
                    progress(measure.id)
        finally:
            drop = getattr(self.engine, "drop_temporary", None)
            for name in reversed(created):
                if drop is not None:
                    drop(name)
        return results


def evaluate_measures(
    measures: Sequence[MeasureDefinition],
    period: Period,
    source: Any,
    engine: str = "duckdb",
    **options: Any,
) -> list[MeasureResult]:
    """Evaluate measures over a source on an engine in one call.

    Args:
        measures: the definitions (e.g. ``builtin_measures().values()``).
        period: the measurement period.
        source: a Bulk NDJSON/Parquet folder, a :class:`~cmio.store.Repository` or resources.
        engine: ``duckdb`` (default), ``postgres`` or ``spark``.
        **options: ``database`` (PostgreSQL URL), ``spark`` (session), ``threads``.
    """
    opened = open_engine(
        engine,
        source=source,
        database=options.get("database"),
        spark=options.get("spark"),
        threads=options.get("threads"),
    )
    try:
        return MeasureRunner(opened, terminology=options.get("terminology")).evaluate(
            list(measures), period, source, progress=options.get("progress")
        )
    finally:
        opened.close()
