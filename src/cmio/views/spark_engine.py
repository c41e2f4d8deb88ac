"""Run views on Spark: compile with :class:`~cmio.views.dialects.spark.SparkDialect`, collect as Arrow.

The source (an NDJSON/Parquet/Delta folder such as a Bulk Data export, or
resources) becomes a temporary view with one ``resource`` JSON-text column
(:func:`cmio.views.spark_sources.spark_resources`); the compiled query runs on
it and the result comes back as a :class:`pyarrow.Table` with the view's schema
(:func:`cmio.views.columns.arrow_schema`), or is written by Spark itself as
Parquet/CSV/JSON for outputs too large to collect. See
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html and
https://spark.apache.org/docs/latest/sql-ref.html.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from sqlglot import exp

from cmio.model import Model
from cmio.views.columns import arrow_schema
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.base import call
from cmio.views.dialects.spark import SparkDialect
from cmio.views.dialects.spark_typed import TypedSparkDialect
from cmio.views.parse import ViewDefinitionError, parse_view
from cmio.views.spark_prune import file_schema, prune_schema, read_paths
from cmio.views.spark_session import SparkConfig, spark_session
from cmio.views.spark_sources import resource_files, spark_resources
from cmio.views.spark_unnest import explode_items
from cmio.views.tree import View
from cmio.views.typed import TypedLayoutUnsupported, is_typed_parquet
from cmio.views.valuesets import ValueSetExpander, expansion_keys, table_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SparkViewError",
    "run",
    "spark_frame",
    "spark_run",
    "spark_run_many",
    "spark_sql",
    "spark_write",
]

Source = Path | str | Iterable[Mapping[str, Any]]
_JOB = "cmio-job-"
"""Prefix of a batched view's ``raise_error`` messages: which view failed the job."""


class SparkViewError(ViewDefinitionError):
    """Spark failed the view's query on the data (the message carries Spark's reason)."""


def _view(view: View | Mapping[str, Any]) -> View:
    return view if isinstance(view, View) else parse_view(dict(view))


def spark_sql(
    view: View | Mapping[str, Any], table: str, compiler: ViewCompiler | None = None
) -> str:
    """The Spark SQL text of ``view`` over a table/temp view ``table`` with a ``resource`` column."""
    compiler = compiler if compiler is not None else ViewCompiler(SparkDialect())
    query = compiler.compile(_view(view), exp.to_table(table), filter_type=False)
    return compiler.dialect.render(explode_items(query))


def run(
    view: View | Mapping[str, Any],
    source: Any,
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    model: Model | None = None,
    limit: int | None = None,
    terminology: ValueSetExpander | None = None,
    **_: Any,
) -> pa.Table:
    """The engine entry point of :func:`cmio.views.run` (``engine="spark"``).

    Args:
        view: a parsed view or ViewDefinition JSON.
        source: an NDJSON/Parquet/Delta file or folder, resources, or a Repository.
        spark: the session to use; else one for ``master`` (default ``local[2]``).
        master: a Spark master URL when no session is given.
        model: the FHIR model.
        limit: at most this many rows.
        terminology: expands the value sets of ``memberOf()`` (:mod:`cmio.views.valuesets`).
    """
    if spark is None:
        spark = spark_session(SparkConfig(master=master) if master else None)
    return spark_run(view, source, spark, model=model, limit=limit, terminology=terminology)


def spark_frame(
    view: View | Mapping[str, Any],
    source: Source,
    spark: SparkSession | None = None,
    *,
    model: Model | None = None,
    terminology: ValueSetExpander | None = None,
    layout: str = "auto",
) -> DataFrame:
    """The view's rows as a (lazy) Spark DataFrame.

    Args:
        view: a parsed view or ViewDefinition JSON.
        source: see :func:`cmio.views.spark_sources.spark_resources`.
        spark: the session (default: :func:`cmio.views.spark_session.spark_session`).
        model: the FHIR model (default R4).
        terminology: expands the value sets of ``memberOf()``: each becomes a temporary
            view the query joins against (Spark broadcasts it).
        layout: ``auto``: Parquet in the typed layout (:mod:`cmio.views.typed`) is read
            as typed columns when the view reads only what they hold, else the JSON
            text; ``typed``: typed columns or
            :class:`~cmio.views.typed.TypedLayoutUnsupported`; ``json``: the JSON text.

    Raises:
        SparkViewError: Spark refused the query.
        TypedLayoutUnsupported: with ``layout="typed"``, no typed form.
    """
    parsed = _view(view)
    spark = spark if spark is not None else spark_session()
    compiler = ViewCompiler(SparkDialect(), model)
    for url in compiler.value_sets(parsed):
        keys = expansion_keys(terminology, url)
        spark.createDataFrame([(k,) for k in keys], "key string").createOrReplaceTempView(
            table_name(url)
        )
    typed = _typed_frame(parsed, source, spark, compiler.model) if layout != "json" else None
    if typed is not None:
        return typed
    if layout == "typed":
        raise TypedLayoutUnsupported("the source has no typed columns for this view")
    frame = spark_resources(spark, source, parsed.resource)
    name = f"cmio_src_{uuid.uuid4().hex[:12]}"
    frame.createOrReplaceTempView(name)
    try:
        return spark.sql(spark_sql(parsed, name, compiler))
    except Exception as exc:
        raise SparkViewError(_reason(exc)) from exc


def _typed_frame(view: View, source: Source, spark: SparkSession, model: Model) -> DataFrame | None:
    """The view over typed Parquet (:mod:`cmio.views.typed`) read schema-on-read, or None
    when the source is not in that layout or the view reads what its columns lack."""
    if not isinstance(source, str | Path):
        return None
    path = Path(source)
    if path.is_dir():
        files, by_name = resource_files(path, view.resource, (".parquet",))
    else:
        files, by_name = [path], path.name.endswith(".parquet")
    if not files or not by_name or not is_typed_parquet(files):
        return None
    name = f"cmio_typed_{uuid.uuid4().hex[:12]}"
    try:
        query = ViewCompiler(TypedSparkDialect(), model).compile(
            view, exp.to_table(name), filter_type=False
        )
    except TypedLayoutUnsupported:
        return None
    sql = explode_items(query).sql(dialect="spark")
    names = [str(f) for f in files]
    # the footer's schema read here (Spark would infer it with a job), cut down to the
    # nested fields the view names (Spark does not prune through lambdas)
    known = file_schema(names[0])
    full = spark.read.schema(known) if known is not None else spark.read
    paths = read_paths(query)  # the compiled tree: rendered once (above), never re-parsed
    pruned = None if paths is None else prune_schema(known or full.parquet(*names).schema, paths)
    readers = [spark.read.schema(pruned)] if pruned is not None else []
    for reader in [*readers, full]:
        reader.parquet(*names).createOrReplaceTempView(name)
        try:
            return spark.sql(sql)
        except Exception as exc:  # analysis: a field the typed columns do not hold
            if "AnalysisException" in type(exc).__name__ or "analysis" in type(exc).__module__:
                continue
            raise SparkViewError(_reason(exc)) from exc
    return None


def spark_run(
    view: View | Mapping[str, Any],
    source: Source,
    spark: SparkSession | None = None,
    *,
    model: Model | None = None,
    limit: int | None = None,
    terminology: ValueSetExpander | None = None,
) -> pa.Table:
    """Run ``view`` on Spark and collect the rows as Arrow (the view's column types).

    Raises:
        SparkViewError: the query failed (for example a column with several values
            and no ``collection: true``); Spark's message is kept.
    """
    parsed = _view(view)
    frame = spark_frame(parsed, source, spark, model=model, terminology=terminology)
    if limit is not None:
        frame = frame.limit(limit)
    schema = arrow_schema(parsed)
    try:
        table = frame.toArrow()
    except Exception as exc:  # Py4J wraps Spark's errors
        raise SparkViewError(_reason(exc)) from exc
    if table.num_columns != len(schema):  # pragma: no cover - compiler invariant
        raise SparkViewError(f"expected {len(schema)} columns, Spark returned {table.num_columns}")
    return table.rename_columns(schema.names).cast(schema)


def spark_write(
    view: View | Mapping[str, Any],
    source: Source,
    out: Path,
    spark: SparkSession | None = None,
    *,
    fmt: str = "parquet",
    model: Model | None = None,
) -> None:
    """Write the view's rows with Spark (a folder of part files) as ``parquet``, ``csv`` or ``json``.

    Raises:
        ValueError: an unknown format.
        SparkViewError: the query failed.
    """
    if fmt not in ("parquet", "csv", "json"):
        raise ValueError(f"unknown Spark output format {fmt!r} (parquet, csv, json)")
    writer = spark_frame(view, source, spark, model=model).write.mode("overwrite")
    try:
        if fmt == "csv":
            writer.option("header", "true").csv(str(out))
        else:
            writer.format(fmt).save(str(out))
    except Exception as exc:
        raise SparkViewError(_reason(exc)) from exc


def spark_run_many(
    jobs: Sequence[tuple[View | Mapping[str, Any], Iterable[Mapping[str, Any]]]],
    spark: SparkSession | None = None,
    *,
    model: Model | None = None,
    chunk: int = 16,
) -> list[pa.Table | Exception]:
    """Run many small views, each over its own resources, in as few Spark jobs as possible.

    Every view's rows are serialized with ``to_json`` and the queries are combined
    with ``UNION ALL`` into one Spark job (Spark's fixed cost per query dominates
    small views; very large plans cost more to optimize, hence ``chunk`` views per
    job). Each view's ``raise_error`` messages carry its job number: when a combined
    job fails on one, that view gets the error and the others run again without it;
    any other failure splits the job in halves until the failing views are found.

    Returns:
        Per job, in order: its rows as Arrow, or the exception it raised (parsing,
        compiling or running).
    """
    spark = spark if spark is not None else spark_session()
    out: list[pa.Table | Exception | None] = [None] * len(jobs)
    compiled: dict[int, tuple[View, str]] = {}
    rows: list[tuple[int, str]] = []
    compiler = ViewCompiler(SparkDialect(), model)
    name = f"cmio_batch_{uuid.uuid4().hex[:12]}"
    for number, (view, resources) in enumerate(jobs):
        try:
            parsed = _view(view)
            source = exp.select("resource").from_(name).where(f"job = {number}").subquery("_in")
            query = explode_items(compiler.compile(parsed, source, filter_type=False))
        except Exception as exc:
            out[number] = exc
            continue
        for node in query.find_all(exp.Anonymous):
            if node.name.lower() == "raise_error" and isinstance(node.expressions[0], exp.Literal):
                text = node.expressions[0].this
                node.set("expressions", [exp.Literal.string(f"{_JOB}{number}: {text}")])
        fields: list[exp.Expression] = []
        for column in parsed.column_names():
            fields.extend((exp.Literal.string(column), exp.column(column, quoted=True)))
        wrapped = exp.select(
            exp.alias_(exp.Literal.number(number), "job"),
            exp.alias_(call("to_json", call("named_struct", *fields)), "row"),
        ).from_(query.subquery(f"_q{number}"))
        compiled[number] = (parsed, wrapped.sql(dialect="spark"))
        rows.extend(
            (number, orjson.dumps(r).decode())
            for r in resources
            if r.get("resourceType") == parsed.resource
        )
    spark.createDataFrame(rows, "job int, resource string").createOrReplaceTempView(name)
    numbers = sorted(compiled)
    pending = [numbers[i : i + chunk] for i in range(0, len(numbers), chunk)][::-1]
    while pending:
        group = pending.pop()
        if not group:
            continue
        try:
            collected = spark.sql(" UNION ALL ".join(compiled[n][1] for n in group)).collect()
        except Exception as exc:
            tagged = re.search(rf"{_JOB}(\d+): ", str(exc))
            failed = int(tagged.group(1)) if tagged else None
            if failed in group:
                out[failed] = SparkViewError(_reason(exc).replace(f"{_JOB}{failed}: ", ""))
                pending.append([n for n in group if n != failed])
            elif len(group) == 1:
                out[group[0]] = SparkViewError(_reason(exc))
            else:
                half = len(group) // 2
                pending.extend((group[:half], group[half:]))
            continue
        by_job: dict[int, list[dict[str, Any]]] = {n: [] for n in group}
        for job, text in collected:
            by_job[job].append(json.loads(text, parse_float=Decimal) if text else {})
        for number, found in by_job.items():
            out[number] = _table(compiled[number][0], found)
    return [r if r is not None else SparkViewError("not run") for r in out]


def _table(view: View, rows: list[dict[str, Any]]) -> pa.Table:
    """JSON rows (``to_json``: NULL fields absent, decimals as JSON numbers) as Arrow."""
    schema = arrow_schema(view)
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        for field in schema:
            columns[field.name].append(row.get(field.name))
    return pa.table(columns, schema=schema)


def _reason(exc: Exception) -> str:
    """Spark's error message without the JVM stack trace."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:2000]
