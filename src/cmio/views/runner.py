"""Run views: ``cmio.views.run(view, source, engine="duckdb") -> pyarrow.Table``.

Engines: ``duckdb`` (the embedded default: the view compiled to one SQL query,
:mod:`cmio.views.compiler`), ``memory`` (the reference evaluator,
:mod:`cmio.views.memory`), and engines provided by modules
``cmio.views.<engine>_engine`` exposing ``run(view, source, **options) -> pyarrow.Table``
(``spark``, ``postgres``). Spec: https://sql-on-fhir.org/ig/latest/
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from cmio.model import Model, load_model
from cmio.views.columns import arrow_schema
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.duckdb import DuckDbDialect
from cmio.views.dialects.typed import TypedDuckDbDialect
from cmio.views.memory import MemoryEvaluator
from cmio.views.parse import ViewDefinitionError, parse_view
from cmio.views.sources import Source, resolve_source
from cmio.views.tree import View
from cmio.views.typed import (
    TypedLayoutUnsupported,
    is_typed_parquet,
    prune,
    read_json_sql,
    structure,
)
from cmio.views.valuesets import (
    ExpansionMembership,
    ValueSetExpander,
    expansion_table,
    table_name,
)

__all__ = ["DuckDbRunner", "load_view", "run"]

_INPUT = "_cmio_view_input"
_TYPED_INPUT = "_cmio_typed_input"


def load_view(view: View | Mapping[str, Any] | str | Path) -> View:
    """A :class:`View` from a View, ViewDefinition JSON (dict) or a JSON file path.

    Raises:
        ViewDefinitionError: the ViewDefinition is invalid.
    """
    if isinstance(view, View):
        return view
    if isinstance(view, str | Path):
        try:
            data = json.loads(Path(view).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ViewDefinitionError(f"cannot read {view}: {exc}") from exc
        return parse_view(data)
    return parse_view(dict(view))


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDbRunner:
    """Runs views on DuckDB (in memory, one connection per run).

    Args:
        model: the FHIR model (loaded once per runner).
        threads: DuckDB worker threads (None: DuckDB's default, all cores).
        terminology: expands the value sets of ``memberOf()`` (once per run, into
            tables the query joins against; see :mod:`cmio.views.valuesets`).
        layout: how file sources are read. ``auto`` (default): typed columns when the
            source has them (Parquet in the typed layout of :mod:`cmio.views.typed`)
            and the view reads only what they hold, else the resource JSON; ``typed``:
            typed columns or :class:`~cmio.views.typed.TypedLayoutUnsupported` (NDJSON
            of one type too: ``read_json`` parses each line straight into the typed
            columns the view reads; not the default for NDJSON, as on the benchmark it
            was no faster than the JSON functions); ``json``: always the JSON.
    """

    def __init__(
        self,
        model: Model | None = None,
        *,
        threads: int | None = None,
        terminology: ValueSetExpander | None = None,
        layout: str = "auto",
    ) -> None:
        if layout not in ("auto", "typed", "json"):
            raise ValueError(f"unknown layout {layout!r} (auto, typed or json)")
        model = model if model is not None else load_model()
        self.compiler = ViewCompiler(DuckDbDialect(), model)
        self.typed_compiler = ViewCompiler(TypedDuckDbDialect(), model)
        self.threads = threads
        self.terminology = terminology
        self.layout = layout

    def _relation(self, source: Source) -> exp.Expression:
        if source.kind == "arrow":
            # JSON text: DuckDB's JSON functions read VARCHAR directly (a cast would parse twice).
            column: exp.Expression = exp.column("resource")
            table = exp.to_table(_INPUT)
        elif source.kind == "ndjson":
            files = ", ".join(_quote(f) for f in source.files)
            return _sql_subquery(
                f"SELECT json::VARCHAR AS resource FROM read_ndjson_objects([{files}])"
            )
        else:
            files = ", ".join(_quote(f) for f in source.files)
            return _sql_subquery(
                f"SELECT resource::VARCHAR AS resource FROM read_parquet([{files}])"
            )
        return exp.select(exp.alias_(column, "resource")).from_(table).subquery("_in")

    def _typed_sql(self, view: View, source: Source) -> str | None:
        """The typed form of the view over ``source``, or None when it has no typed columns.

        Typed Parquet is read as is (Parquet prunes nested columns itself); with
        ``layout="typed"``, NDJSON of one type through ``read_json`` into the top-level
        elements the view reads, with only the nested fields its query names.

        Raises:
            TypedLayoutUnsupported: the view reads what the typed columns lack.
        """
        files = ", ".join(_quote(f) for f in source.files)
        single = source.single_type
        if source.kind == "parquet" and is_typed_parquet(source.files):
            relation = _sql_subquery(f"SELECT * FROM read_parquet([{files}])")
            return self.typed_compiler.sql(view, relation, filter_type=not single)
        if source.kind != "ndjson" or not single or not source.files or self.layout != "typed":
            return None
        tops: list[str] = []

        def placeholder(keys: Sequence[str]) -> exp.Expression:
            tops.extend(keys)
            return exp.to_table(_TYPED_INPUT)

        query = self.typed_compiler.compile(view, placeholder, filter_type=False)
        names = {
            str(node.expressions[1].this)
            for node in query.find_all(exp.Anonymous)
            if node.name.lower() == "struct_extract"
            and isinstance(node.expressions[1], exp.Literal)
        }
        columns = prune(structure(self.compiler.model, view.resource, tops or ["id"]), names)
        relation = _sql_subquery(f"SELECT * FROM {read_json_sql(source.files, columns)}")
        filled = query.transform(
            lambda node: (
                relation.copy()
                if isinstance(node, exp.Table) and node.name == _TYPED_INPUT
                else node
            )
        )
        return self.typed_compiler.dialect.render(filled)

    def plans(self, view: View, source: Source) -> Iterator[tuple[str, str]]:
        """The queries to try in order, as (layout, DuckDB SQL): the typed form first
        when the source and the view allow it, then the JSON form (compiled only when
        asked for).

        Raises:
            TypedLayoutUnsupported: with ``layout="typed"``, no typed form.
        """
        single = source.single_type
        if self.layout != "json":
            try:
                sql = self._typed_sql(view, source)
                if sql is None:
                    raise TypedLayoutUnsupported(f"{source.kind} source without typed columns")
                yield "typed", sql
            except TypedLayoutUnsupported:
                if self.layout == "typed":
                    raise
        if self.layout != "typed":
            yield "json", self.compiler.sql(view, self._relation(source), filter_type=not single)

    def sql(self, view: View, source: Source) -> str:
        """The DuckDB SQL of a view over a resolved source (the first of :meth:`plans`)."""
        return next(iter(self.plans(view, source)))[1]

    def batches(
        self,
        view: View | Mapping[str, Any] | str | Path,
        source: Any,
        *,
        rows: int = 100_000,
        on_input: Callable[[int], None] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the view's rows as Arrow record batches (schema: :func:`arrow_schema`).

        Args:
            view: the view (see :func:`load_view`).
            source: see :func:`run`.
            rows: rows per output batch.
            on_input: called with the number of resources of each input batch DuckDB
                consumes (streamed sources: memory and the store), for progress bars.

        Raises:
            ViewDefinitionError: invalid view, unsupported FHIRPath, or a failure on the data.
            SourceError: the source cannot be read.
        """
        view = load_view(view)
        schema = arrow_schema(view)
        resolved = resolve_source(source, view.resource)
        if resolved.kind != "arrow" and not resolved.files:
            return
        plans = self.plans(view, resolved)
        tables = {
            table_name(url): expansion_table(self.terminology, url)
            for url in self.compiler.value_sets(view)
        }
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")
            if self.threads is not None:
                con.execute(f"SET threads = {int(self.threads)}")
            for name, table in tables.items():
                con.register(name, table)
            if resolved.batches is not None:
                con.register(_INPUT, _counted(resolved.batches(), on_input))
            for layout, sql in plans:
                last = layout == "json" or self.layout == "typed"
                yielded = False
                try:
                    for batch in con.sql(sql).to_arrow_reader(rows):
                        yielded = True
                        yield _conform(batch, schema)
                    return
                except duckdb.Error as exc:
                    if layout == "typed" and not last and not yielded:
                        # typed columns lacking an element the view reads (a bind error)
                        # or data contradicting the model's types: read the JSON instead
                        continue
                    if layout == "typed" and isinstance(exc, duckdb.BinderException):
                        raise TypedLayoutUnsupported(_clean(str(exc))) from exc
                    raise _view_error(exc) from exc
        finally:
            con.close()

    def run(self, view: View | Mapping[str, Any] | str | Path, source: Any) -> pa.Table:
        """The view's rows as one Arrow table."""
        view = load_view(view)
        return pa.Table.from_batches(list(self.batches(view, source)), schema=arrow_schema(view))


def _counted(
    reader: pa.RecordBatchReader, on_input: Callable[[int], None] | None
) -> pa.RecordBatchReader:
    if on_input is None:
        return reader
    report = on_input

    def generate() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            report(batch.num_rows)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, generate())


def _view_error(exc: duckdb.Error) -> ViewDefinitionError:
    message = _clean(str(exc))
    element = message.split(" ", 1)[0].rstrip(":")
    if not element.startswith("ViewDefinition"):
        element = "ViewDefinition"
    return ViewDefinitionError(message, element)


def _sql_subquery(sql: str) -> exp.Expression:
    parsed: exp.Expression = exp.maybe_parse(sql, dialect="duckdb")
    assert isinstance(parsed, exp.Query)
    return parsed.subquery("_in")


def _clean(message: str) -> str:
    for prefix in ("Invalid Input Error: ", "Conversion Error: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    columns = [batch.column(i).cast(field.type) for i, field in enumerate(schema)]
    return pa.record_batch(columns, schema=schema)


def _memory_resources(source: Any, resource_type: str) -> Iterator[dict[str, Any]]:
    resolved = resolve_source(source, resource_type)
    if resolved.batches is not None:
        for batch in resolved.batches():
            for text in batch.column(0).to_pylist():
                yield json.loads(text)
        return
    con = duckdb.connect()
    try:
        for path in resolved.files:
            if resolved.kind == "parquet":
                query = f"SELECT resource::VARCHAR FROM read_parquet({_quote(path)})"
            else:
                query = f"SELECT json::VARCHAR FROM read_ndjson_objects({_quote(path)})"
            for (text,) in con.execute(query).fetchall():
                yield json.loads(text)
    finally:
        con.close()


def run(
    view: View | Mapping[str, Any] | str | Path,
    source: Any,
    engine: str = "duckdb",
    **options: Any,
) -> pa.Table:
    """Run a ViewDefinition over a source.

    See https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html.

    Args:
        view: a :class:`View`, ViewDefinition JSON (dict) or the path of a JSON file.
        source: an iterable of resources (dicts), a folder of NDJSON/Parquet files
            (Bulk Data layout, see :mod:`cmio.views.sources`), one such file, or a
            :class:`~cmio.store.Repository` (its current resources).
        engine: ``duckdb`` (default), ``memory``, or an engine module's name
            (``spark``, ``postgres``: ``cmio.views.<engine>_engine``).
        **options: engine options (``model``, ``threads``, ``layout`` for DuckDB: see
            :class:`DuckDbRunner`; for the others see the engine);
            ``terminology`` (a :class:`~cmio.views.valuesets.ValueSetExpander`, such as
            :class:`cmio.terminology.providers.ServiceTerminology`) for ``memberOf()``.

    Returns:
        A :class:`pyarrow.Table` with the view's columns in order (``.to_pandas()``,
        ``polars.from_arrow()`` for data frames).

    Raises:
        ViewDefinitionError: an invalid view or a failure on the data (naming the element).
        SourceError: the source cannot be read.
        ValueError: an unknown engine.
    """
    parsed = load_view(view)
    terminology = options.get("terminology")
    if engine == "duckdb":
        runner = DuckDbRunner(
            options.get("model"),
            threads=options.get("threads"),
            terminology=terminology,
            layout=options.get("layout", "auto"),
        )
        return runner.run(parsed, source)
    if engine == "memory":
        evaluator = MemoryEvaluator(terminology=ExpansionMembership(terminology))
        return evaluator.run(parsed, _memory_resources(source, parsed.resource))
    try:
        module = importlib.import_module(f"cmio.views.{engine}_engine")
    except ModuleNotFoundError as exc:
        raise ValueError(f"unknown view engine {engine!r}") from exc
    table: pa.Table = module.run(parsed, source, **options)
    return table
