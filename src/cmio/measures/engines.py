"""Where measure SQL runs: DuckDB (default), PostgreSQL and Spark.

An engine materializes the measure tables (the ViewDefinitions of
:mod:`cmio.measures.views`, compiled by :mod:`cmio.views` for that engine), loads the
value-set expansion table, and runs the measure query rendered in its SQL dialect
(:func:`cmio.measures.sql.render`). The contract is small (:class:`MeasureEngine`):
``load_views``, ``load_table``, ``query`` and ``close``.

* DuckDB: in memory (or a database file whose tables are reused, see
  :mod:`cmio.measures.incremental`); the views run through :func:`cmio.views.run`.
* PostgreSQL: one connection; every table is a ``TEMPORARY`` table of it, the views
  created with :func:`cmio.views.postgres_engine.postgres_sql` over the store's
  ``resource`` table (a PostgreSQL store) or over resources copied in.
* Spark: temporary views of the session (:func:`cmio.views.spark_engine.spark_frame`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from cmio.model import Model
from cmio.store.base import Repository
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.duckdb import DuckDbDialect
from cmio.views.parse import parse_view
from cmio.views.sources import find_files, resolve_source, resource_batches

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "DuckDbEngine",
    "MeasureEngine",
    "PostgresEngine",
    "SparkEngine",
    "open_engine",
    "resources_of_type",
]


class MeasureEngine(Protocol):
    """What the measure runner needs from an engine."""

    dialect: str
    """The sqlglot dialect of :meth:`query`."""

    def load_views(self, views: Mapping[str, dict[str, Any]], source: Any) -> None:
        """Materialize each ViewDefinition over ``source`` as a table named by its key."""

    def load_table(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table available under ``name``."""

    def query(self, sql: str) -> pa.Table:
        """Run a query of the engine's dialect; the rows as Arrow."""

    def close(self) -> None:
        """Release the connection or session."""


def resources_of_type(source: Any, resource_type: str) -> Iterator[dict[str, Any]]:
    """The resources of one type in a source: a Bulk NDJSON folder, a file, or resources."""
    if isinstance(source, str | Path):
        path = Path(source)
        files = find_files(path, resource_type)[1] if path.is_dir() else (path,)
        con = duckdb.connect()
        try:
            for file in files:
                quoted = "'" + str(file).replace("'", "''") + "'"
                reader = (
                    f"read_parquet({quoted})"
                    if file.name.endswith(".parquet")
                    else f"read_ndjson_objects({quoted})"
                )
                column = "resource" if file.name.endswith(".parquet") else "json"
                for (text,) in con.execute(f"SELECT {column}::VARCHAR FROM {reader}").fetchall():
                    data = json.loads(text)
                    if data.get("resourceType") == resource_type:
                        yield data
        finally:
            con.close()
        return
    for item in source:
        data = item if isinstance(item, Mapping) else json.loads(item)
        if data.get("resourceType") == resource_type:
            yield dict(data)


def _typed_texts(source: Any, types: set[str] | None) -> Iterator[str | bytes]:
    """Resources of a store or an iterable as JSON text (the store's bytes as they are)."""
    if isinstance(source, Repository):
        for stored in source.iter_current(sorted(types) if types else None):
            if stored.data is not None:
                yield stored.data
        return
    for item in source:
        yield json.dumps(item, separators=(",", ":")) if isinstance(item, Mapping) else item


class DuckDbEngine:
    """Measure SQL on DuckDB.

    Args:
        connection: a connection to use (default: a new in-memory database).
        threads: DuckDB worker threads (None: all cores).
        model: the FHIR model (loaded once per engine when not given).
        compiled: a cache of compiled view SQL a caller keeps across engines (by view,
            source relation and type filter; compiling is the costly part of a small load).
        reuse: keep tables that already exist in the database instead of running their
            views (the incremental path: :mod:`cmio.measures.incremental` keeps them fresh).
    """

    dialect = "duckdb"
    constant_valuesets = True
    """Value-set membership is written as constant code lists (filters DuckDB applies while
    scanning, :func:`cmio.measures.sql.expand_macros`)."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection | None = None,
        *,
        threads: int | None = None,
        reuse: bool = False,
        model: Model | None = None,
        compiled: dict[tuple[str, str, bool], str] | None = None,
    ) -> None:
        self.con = connection if connection is not None else duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        self.threads = threads
        self.reuse = reuse
        self._arrow: dict[str, pa.Table] = {}
        self._inputs: set[str] = set()
        self._temporary: dict[str, str] = {}
        self._compiled = compiled if compiled is not None else {}
        self.compiler = ViewCompiler(DuckDbDialect(), model)

    def _existing(self) -> set[str]:
        found = self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {str(row[0]) for row in found}

    def _relation(
        self, source: Any, resource_type: str, types: set[str]
    ) -> tuple[exp.Expression, bool]:
        """The SQL relation (one ``resource`` JSON text column) of a type; whether it may
        hold other types."""
        from cmio.views.runner import DuckDbRunner

        if isinstance(source, str | Path):
            resolved = resolve_source(source, resource_type)
            if not resolved.files:  # no file of this type: an empty table
                empty: exp.Expression = exp.maybe_parse(
                    "SELECT CAST(NULL AS VARCHAR) AS resource WHERE FALSE", dialect="duckdb"
                )
                assert isinstance(empty, exp.Query)
                return empty.subquery("_in"), False
            runner = DuckDbRunner(self.compiler.model)
            return runner._relation(resolved), not resolved.single_type
        if "cmio_in_resources" not in self._inputs:
            # resources in memory or in the store: loaded once, typed, for every view
            table = "cmio_in_resources"
            reader = resource_batches(_typed_texts(source, types))
            self.con.register("_cmio_in_reader", reader)
            self.con.execute(
                f"CREATE OR REPLACE TEMPORARY TABLE {table} AS SELECT"
                " json_extract_string(resource, '$.resourceType') AS rtype, resource"
                " FROM _cmio_in_reader"
            )
            self.con.unregister("_cmio_in_reader")
            self._inputs.add(table)
        quoted = resource_type.replace("'", "''")
        relation: exp.Expression = exp.maybe_parse(
            f"SELECT resource FROM cmio_in_resources WHERE rtype = '{quoted}'", dialect="duckdb"
        )
        assert isinstance(relation, exp.Query)
        return relation.subquery("_in"), False

    def load_views(self, views: Mapping[str, dict[str, Any]], source: Any) -> None:
        """Compile each view (:class:`~cmio.views.compiler.ViewCompiler`) over the source and
        create its table in the connection."""
        parsed_views = {n: parse_view(v) for n, v in views.items()}
        types = {p.resource for p in parsed_views.values()}
        existing = self._existing() if self.reuse else set()
        for name, parsed in parsed_views.items():
            if name in existing:
                continue
            relation, mixed = self._relation(source, parsed.resource, types)
            key = (json.dumps(views[name], sort_keys=True), relation.sql("duckdb"), mixed)
            sql = self._compiled.get(key)
            if sql is None:
                sql = self._compiled[key] = self.compiler.sql(parsed, relation, filter_type=mixed)
            self.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {sql}')

    def load_table(self, name: str, table: pa.Table) -> None:
        """Register an Arrow table (zero copy) under ``name``."""
        self._arrow[name] = table
        self.con.register(name, table)

    def query(self, sql: str) -> pa.Table:
        """Run DuckDB SQL."""
        result: pa.Table = self.con.sql(sql).to_arrow_table()
        return result

    def create_temporary(self, name: str, sql: str, *, view: bool = False) -> None:
        """A step several measures share (:func:`cmio.measures.sql.shared_steps`) as a
        temporary table of the connection (its rows stored), or as a temporary view
        (recomputed inside each query reading it)."""
        kind = "VIEW" if view else "TABLE"
        self.con.execute(f'CREATE OR REPLACE TEMPORARY {kind} "{name}" AS {sql}')
        self._temporary[name] = kind

    def drop_temporary(self, name: str) -> None:
        """Drop a table or view :meth:`create_temporary` made."""
        kind = self._temporary.pop(name, "TABLE")
        self.con.execute(f'DROP {kind} IF EXISTS temp."{name}"')

    def close(self) -> None:
        """Unregister the Arrow tables (the connection stays the caller's when given)."""
        for name in self._arrow:
            self.con.unregister(name)
        self._arrow.clear()


_PG_TYPES = {
    pa.string(): "TEXT",
    pa.large_string(): "TEXT",
    pa.bool_(): "BOOLEAN",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE PRECISION",
}


class PostgresEngine:
    """Measure SQL on PostgreSQL (temporary tables of one connection).

    Args:
        database: the PostgreSQL URL (default: the source's, when it is a PostgreSQL store).
    """

    dialect = "postgres"

    def __init__(self, database: str) -> None:
        import psycopg

        from cmio.views.dialects.postgres import PostgresDialect

        self.conn: Any = psycopg.connect(database, autocommit=True)
        self._inputs: dict[str, str] = {}
        self.compiler = ViewCompiler(PostgresDialect())

    def _input(self, source: Any, resource_type: str) -> str:
        if resource_type in self._inputs:
            return self._inputs[resource_type]
        table = f"cmio_in_{resource_type.lower()}"
        self.conn.execute(f"CREATE TEMPORARY TABLE {table} (resource jsonb)")
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} (resource) FROM STDIN") as copy:
            for resource in resources_of_type(source, resource_type):
                copy.write_row((json.dumps(resource, separators=(",", ":")),))
        relation = f"SELECT resource FROM {table}"
        self._inputs[resource_type] = relation
        return relation

    def load_views(self, views: Mapping[str, dict[str, Any]], source: Any) -> None:
        """Create each view as a temporary table from the store or copied resources."""
        from cmio.views.postgres_engine import postgres_sql

        for name, view in views.items():
            parsed = parse_view(view)
            relation = (
                None if isinstance(source, Repository) else self._input(source, parsed.resource)
            )
            sql = postgres_sql(parsed, relation=relation, compiler=self.compiler)
            self.conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            self.conn.execute(f'CREATE TEMPORARY TABLE "{name}" AS {sql}')
            self.conn.execute(f'ANALYZE "{name}"')

    def load_table(self, name: str, table: pa.Table) -> None:
        """Copy an Arrow table into a temporary table."""
        columns = ", ".join(f'"{f.name}" {_PG_TYPES.get(f.type, "TEXT")}' for f in table.schema)
        self.conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        self.conn.execute(f'CREATE TEMPORARY TABLE "{name}" ({columns})')
        names = ", ".join(f'"{n}"' for n in table.column_names)
        with self.conn.cursor() as cur, cur.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
            for row in table.to_pylist():
                copy.write_row(tuple(row.values()))
        self.conn.execute(f'ANALYZE "{name}"')

    def query(self, sql: str) -> pa.Table:
        """Run PostgreSQL SQL."""
        with self.conn.cursor() as cur:
            cur.execute(sql)
            names = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})

    def close(self) -> None:
        """Close the connection (its temporary tables go with it)."""
        self.conn.close()


class SparkEngine:
    """Measure SQL on Spark (temporary views of one session).

    Args:
        spark: the session (default: :func:`cmio.views.spark_session.spark_session`).
    """

    dialect = "spark"

    def __init__(self, spark: SparkSession | None = None) -> None:
        if spark is None:
            from cmio.views.spark_session import spark_session

            spark = spark_session()
        self.spark = spark
        self._names: list[str] = []
        self._steps: list[Any] = []
        self._temporary: dict[str, Any] = {}

    def load_views(self, views: Mapping[str, dict[str, Any]], source: Any) -> None:
        """Each view as a cached temporary view of its Spark DataFrame (cached lazily: the
        first query reading it computes and keeps its rows, no Spark job of its own)."""
        from cmio.views.spark_engine import spark_frame

        data: Any = source
        if not isinstance(source, str | Path | Repository):
            data = list(source)  # read more than once
        if isinstance(source, Repository):
            data = [json.loads(s.data) for s in source.iter_current() if s.data is not None]
        for name, view in views.items():
            typed = data
            folder = isinstance(data, str | Path) and Path(data).is_dir()
            if folder and not find_files(Path(data), parse_view(view).resource)[1]:
                typed = []  # no file of this type: an empty frame
            frame = spark_frame(view, typed, self.spark)
            frame.cache().createOrReplaceTempView(name)  # built by the first query reading it
            self._names.append(name)

    def load_table(self, name: str, table: pa.Table) -> None:
        """An Arrow table as a temporary view."""
        from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

        types = {pa.bool_(): BooleanType(), pa.float64(): DoubleType()}
        schema = StructType(
            [StructField(f.name, types.get(f.type, StringType()), True) for f in table.schema]
        )
        rows = [tuple(r.values()) for r in table.to_pylist()]
        self.spark.createDataFrame(rows, schema).cache().createOrReplaceTempView(name)
        self._names.append(name)

    def query(self, sql: str) -> pa.Table:
        """Run Spark SQL; the rows collected as Arrow."""
        frame = self.spark.sql(sql)
        names = frame.columns
        rows = [tuple(r) for r in frame.collect()]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})

    def _step(self, name: str, sql: str, view: bool) -> Any:
        """``sql`` as the temporary view ``name``: cached (its rows computed once, by the
        first query reading it, and kept) unless ``view`` (a row-wise step, recomputed
        inside each reader like a DuckDB view, so its filters reach the cached scans)."""
        frame = self.spark.sql(sql)
        if not view:
            frame = frame.cache()
        frame.createOrReplaceTempView(name)
        return frame

    def query_steps(
        self, steps: Sequence[tuple[str, str]], select: str, views: Collection[str] = ()
    ) -> pa.Table:
        """Run a measure query one CTE at a time, then the final SELECT.

        Each step becomes a temporary view before the next (Spark plans one giant query
        with every CTE inlined, and runs out of execution memory on it): a cached one,
        whose plan the steps reading it see as a stored relation, or a plain view for the
        steps named in ``views`` (row-wise: :func:`cmio.measures.sql.row_wise`). Caching
        is lazy: the final query computes each cached step once, in one Spark job rather
        than a job per step.
        """
        for name, sql in steps:
            self._steps.append(self._step(name, sql, name in views))
        try:
            return self.query(select)
        finally:
            for frame in self._steps:
                frame.unpersist()
            self._steps.clear()

    def create_temporary(self, name: str, sql: str, *, view: bool = False) -> None:
        """A step several measures share (:func:`cmio.measures.sql.shared_steps`) as a
        temporary view of the session, cached unless ``view`` (see :meth:`query_steps`)."""
        self._temporary[name] = self._step(name, sql, view)

    def drop_temporary(self, name: str) -> None:
        """Drop a view :meth:`create_temporary` made (and its cached rows)."""
        frame = self._temporary.pop(name, None)
        self.spark.catalog.dropTempView(name)
        if frame is not None:
            frame.unpersist()

    def close(self) -> None:
        """Drop the temporary views (the session stays up for reuse)."""
        for name in self._names:
            self.spark.catalog.dropTempView(name)
        self._names.clear()


def open_engine(
    engine: str,
    *,
    source: Any = None,
    database: str | None = None,
    spark: SparkSession | None = None,
    threads: int | None = None,
) -> MeasureEngine:
    """An engine by name: ``duckdb``, ``postgres`` or ``spark``.

    Raises:
        ValueError: an unknown engine, or PostgreSQL without a database.
    """
    if engine == "duckdb":
        return DuckDbEngine(threads=threads)
    if engine == "postgres":
        url = database or getattr(source, "url", None)
        if not isinstance(url, str) or not url.startswith("postgres"):
            raise ValueError(
                "the postgres engine needs --database postgresql://... or a PostgreSQL store"
            )
        return PostgresEngine(url)
    if engine == "spark":
        return SparkEngine(spark)
    raise ValueError(f"unknown measure engine {engine!r} (duckdb, postgres, spark)")
