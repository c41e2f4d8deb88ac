"""Run the oversight measures' SQL (EHR use, cost, standards adherence) on DuckDB,
PostgreSQL or Spark.

The measures are written once in DuckDB SQL and rendered for the other engines
with sqlglot (https://sqlglot.com/sqlglot/dialects.html). Inputs are the flat
tables of SQL on FHIR views (https://sql-on-fhir.org/ig/latest/) as Arrow; an
:class:`SqlEngine` loads them, materializes intermediate tables and returns
results as Arrow. Measurement periods are given as :class:`Period`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import duckdb
import psycopg
import pyarrow as pa
import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["ENGINES", "Period", "SqlEngine", "open_engine"]

ENGINES = ("duckdb", "postgres", "spark")
"""Engines the oversight measures run on."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}$")
_PG_TYPES = MappingProxyType(
    {
        pa.string(): "TEXT",
        pa.large_string(): "TEXT",
        pa.int64(): "BIGINT",
        pa.int32(): "BIGINT",
        pa.float64(): "DOUBLE PRECISION",
        pa.bool_(): "BOOLEAN",
    }
)
_MONTH = re.compile(r"(\d{4})-(\d{2})$")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """A measurement period of whole days, both ends included.

    Attributes:
        start: first day. end: last day.
    """

    start: date
    end: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-01/2026-12`` (whole months) or ``2026-01-01/2026-12-31``.

        Raises:
            ValueError: not two dates or months separated by ``/``, or end before start.
        """
        parts = text.strip().split("/")
        if len(parts) != 2:
            raise ValueError(f"period {text!r}: expected START/END (e.g. 2026-01/2026-12)")
        start, end = (_bound(p.strip(), last=i == 1, text=text) for i, p in enumerate(parts))
        if end < start:
            raise ValueError(f"period {text!r}: end before start")
        return cls(start, end)

    @property
    def first(self) -> str:
        """The first day as ``YYYY-MM-DD`` (compared with the date part of FHIR instants)."""
        return self.start.isoformat()

    @property
    def last(self) -> str:
        """The last day as ``YYYY-MM-DD``."""
        return self.end.isoformat()


def _bound(part: str, *, last: bool, text: str) -> date:
    month = _MONTH.match(part)
    if month:
        year, mon = int(month[1]), int(month[2])
        if not 1 <= mon <= 12:
            raise ValueError(f"period {text!r}: bad month {part!r}")
        return date(year, mon, calendar.monthrange(year, mon)[1] if last else 1)
    if _DAY.match(part):
        try:
            return date.fromisoformat(part)
        except ValueError as exc:
            raise ValueError(f"period {text!r}: bad date {part!r}") from exc
    raise ValueError(f"period {text!r}: {part!r} is not YYYY-MM or YYYY-MM-DD")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad table name {name!r}")
    return name


class SqlEngine:
    """One engine connection holding the measure tables.

    Args:
        engine: ``duckdb``, ``postgres`` or ``spark``.
        database: PostgreSQL URL (``postgres``).
        spark: a Spark session (``spark``; default: :func:`cmio.views.spark_session.spark_session`).
        threads: DuckDB worker threads (None: all cores).
    """

    def __init__(
        self,
        engine: str = "duckdb",
        *,
        database: str | None = None,
        spark: SparkSession | None = None,
        threads: int | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
        self.engine = engine
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        self._spark: SparkSession | None = None
        self._arrow: dict[str, pa.Table] = {}
        if engine == "duckdb":
            self._duck = duckdb.connect()
            self._duck.execute("SET enable_progress_bar = false")
            if threads is not None:
                self._duck.execute(f"SET threads = {int(threads)}")
        elif engine == "postgres":
            if not database:
                raise ValueError("the postgres engine needs a database URL")
            self._pg = psycopg.connect(database, autocommit=True)
        else:
            if spark is None:
                from cmio.views.spark_session import spark_session

                spark = spark_session()
            self._spark = spark

    def render(self, sql: str) -> str:
        """``sql`` (DuckDB dialect) rendered for this engine."""
        if self.engine == "duckdb":
            return sql
        if self.engine == "postgres":
            return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="postgres"))
        # Spark's percentile_cont takes WITHIN GROUP only; percentile() interpolates alike.
        trees = [t.transform(_spark_percentile) for t in sqlglot.parse(sql, read="duckdb") if t]
        return ";\n".join(t.sql("spark") for t in trees)

    def load(self, name: str, table: pa.Table) -> None:
        """Make ``table`` available to queries as ``name`` (replacing one of that name).

        On DuckDB the Arrow table is scanned in place (a registered view, no copy): the
        engine keeps a reference until it is replaced or the engine closed."""
        _check_name(name)
        if self._duck is not None:
            self._forget(name)
            self._duck.execute(f"DROP TABLE IF EXISTS {name}")
            self._duck.register(name, table)
            self._arrow[name] = table
        elif self._pg is not None:
            _pg_load(self._pg, name, table)
        else:
            assert self._spark is not None
            frame = self._spark.createDataFrame(table.to_pandas(), schema=_spark_schema(table))
            frame.createOrReplaceTempView(name)

    def create(self, name: str, sql: str) -> None:
        """Materialize the query ``sql`` (DuckDB dialect) as table ``name``."""
        _check_name(name)
        if self._duck is not None:
            self._forget(name)
            self._duck.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        elif self._pg is not None:
            self._pg.execute(f"DROP TABLE IF EXISTS {name}")
            self._pg.execute(f"CREATE TEMP TABLE {name} AS {self.render(sql)}")  # type: ignore[arg-type]
        else:
            assert self._spark is not None
            frame = self._spark.sql(self.render(sql)).cache()
            frame.createOrReplaceTempView(name)

    def _forget(self, name: str) -> None:
        if self._duck is not None and self._arrow.pop(name, None) is not None:
            self._duck.unregister(name)

    def query(self, sql: str) -> pa.Table:
        """Rows of the query ``sql`` (DuckDB dialect) as Arrow."""
        if self._duck is not None:
            return self._duck.sql(sql).to_arrow_table()
        if self._pg is not None:
            with self._pg.cursor() as cur:
                cur.execute(self.render(sql))  # type: ignore[arg-type]
                names = [d.name for d in cur.description or ()]
                rows = cur.fetchall()
            return _rows_table(names, rows)
        assert self._spark is not None
        frame = self._spark.sql(self.render(sql))
        return _rows_table(frame.columns, [tuple(r) for r in frame.collect()])

    def close(self) -> None:
        """Close the connection (Spark sessions are left running)."""
        if self._duck is not None:
            self._duck.close()
            self._arrow.clear()
        if self._pg is not None:
            self._pg.close()

    def __enter__(self) -> SqlEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _spark_percentile(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.PercentileCont):
        return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
    return node


def open_engine(engine: str = "duckdb", **options: Any) -> SqlEngine:
    """An :class:`SqlEngine` (see its arguments)."""
    return SqlEngine(engine, **options)


def _pg_load(conn: psycopg.Connection[Any], name: str, table: pa.Table) -> None:
    columns = []
    for field in table.schema:
        kind = _PG_TYPES.get(field.type)
        if kind is None:
            raise ValueError(f"column {field.name}: type {field.type} cannot be loaded")
        columns.append(f'"{field.name}" {kind}')
    conn.execute(f"DROP TABLE IF EXISTS {name}")  # type: ignore[arg-type]
    conn.execute(f"CREATE TEMP TABLE {name} ({', '.join(columns)})")  # type: ignore[arg-type]
    names = ", ".join(f'"{f.name}"' for f in table.schema)
    with conn.cursor() as cur, cur.copy(f"COPY {name} ({names}) FROM STDIN") as copy:  # type: ignore[arg-type]
        for batch in table.to_batches(50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                copy.write_row(row)


def _rows_table(names: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    from decimal import Decimal

    columns: dict[str, list[Any]] = {n: [] for n in names}
    for row in rows:
        for n, v in zip(names, row, strict=True):
            columns[n].append(float(v) if isinstance(v, Decimal) else v)
    return pa.table(columns) if names else pa.table({})


def _spark_schema(table: pa.Table) -> Any:
    from pyspark.sql import types as T

    kinds = {
        pa.string(): T.StringType(),
        pa.large_string(): T.StringType(),
        pa.int64(): T.LongType(),
        pa.int32(): T.LongType(),
        pa.float64(): T.DoubleType(),
        pa.bool_(): T.BooleanType(),
    }
    return T.StructType([T.StructField(f.name, kinds[f.type], True) for f in table.schema])
