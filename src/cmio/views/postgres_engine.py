"""Run views inside PostgreSQL, over the store's ``jsonb`` column, or create them as SQL views.

The query is the view compiled with :class:`~cmio.views.dialects.postgres.PostgresDialect`
over the store's current resources (``SELECT body AS resource FROM resource WHERE
type = .. AND NOT deleted``; see :mod:`cmio.store.postgres`), wrapped in a
projection that casts each output column to its SQL type (``text``, ``boolean``,
``bigint``, ``numeric(38,10)`` or arrays of those). :func:`create_view` makes it
a named ``VIEW`` or ``MATERIALIZED VIEW`` (``REFRESH MATERIALIZED VIEW`` brings
it up to date); :func:`run` returns the rows as Arrow. Resources that are not in
a store are loaded into a temporary table first.
See https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html and
https://www.postgresql.org/docs/15/sql-creatematerializedview.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
import pyarrow as pa
from psycopg.types.json import Jsonb
from sqlglot import exp

from cmio.model import Model
from cmio.store.base import Repository
from cmio.views.columns import arrow_schema, kind_of
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.postgres import PostgresDialect
from cmio.views.parse import ViewDefinitionError, parse_view
from cmio.views.tree import View
from cmio.views.valuesets import ValueSetExpander, expansion_keys, table_name

__all__ = ["PostgresViewError", "create_view", "load_value_sets", "postgres_sql", "run"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CAST = {"string": "TEXT", "boolean": "BOOLEAN", "integer": "BIGINT", "decimal": "NUMERIC(38, 10)"}
_JSON_KIND = {"boolean": "boolean", "integer": "number", "decimal": "number"}


class PostgresViewError(ViewDefinitionError):
    """PostgreSQL failed the view's query on the data (its message is kept)."""


def _view(view: View | Mapping[str, Any]) -> View:
    return view if isinstance(view, View) else parse_view(dict(view))


def _typed(column: str, kind: str, collection: bool) -> str:
    """SQL casting one output cell (``jsonb`` from a row struct, or already typed) to the
    column's type."""
    ref = f'to_jsonb(_v."{column}")'
    if collection:
        item = _item("_e", kind)
        return (
            f"COALESCE(ARRAY(SELECT {item} FROM jsonb_array_elements("
            f"CASE WHEN jsonb_typeof({ref}) = 'array' THEN {ref} END) AS _a(_e)),"
            f" CAST(ARRAY[] AS {_CAST[kind]}[]))"
        )
    return _item(ref, kind)


def _item(ref: str, kind: str) -> str:
    if kind == "string":
        return f"({ref} #>> '{{}}')"
    return f"CASE WHEN jsonb_typeof({ref}) = '{_JSON_KIND[kind]}' THEN CAST({ref} AS {_CAST[kind]}) END"


def postgres_sql(
    view: View | Mapping[str, Any],
    *,
    relation: str | None = None,
    model: Model | None = None,
    compiler: ViewCompiler | None = None,
) -> str:
    """The PostgreSQL query of a view, output columns typed.

    Args:
        view: a parsed view or ViewDefinition JSON.
        relation: SQL of a relation with a ``resource jsonb`` column holding only the
            view's resource type; default: the store's current resources of that type.
        model: the FHIR model.
        compiler: a compiler to reuse (its dialect must be PostgreSQL).
    """
    parsed = _view(view)
    if relation is None:
        rtype = parsed.resource.replace("'", "''")
        relation = f"SELECT body AS resource FROM resource WHERE type = '{rtype}' AND NOT deleted"
    compiler = compiler if compiler is not None else ViewCompiler(PostgresDialect(), model)
    source: exp.Expression = exp.maybe_parse(relation, dialect="postgres")
    assert isinstance(source, exp.Query)
    tree = compiler.compile(parsed, source.subquery("_in"), filter_type=False)
    # column names keep their case (PostgreSQL folds unquoted names to lower case)
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("quoted", True)
    inner = compiler.dialect.render(tree)
    columns = ", ".join(
        f'{_typed(c.name, kind_of(c.type), c.collection)} AS "{c.name}"' for c in parsed.columns()
    )
    return f"SELECT {columns} FROM ({inner}) AS _v"


def _url(source: Any, database: str | None) -> str:
    if database is not None:
        return database
    url = getattr(source, "url", None)
    if isinstance(source, Repository) and isinstance(url, str) and url.startswith("postgres"):
        return url
    raise ValueError(
        "the postgres engine needs a PostgreSQL store (source=PostgresRepository) or"
        " database='postgresql://...'"
    )


def run(
    view: View | Mapping[str, Any],
    source: Any,
    *,
    database: str | None = None,
    model: Model | None = None,
    limit: int | None = None,
    terminology: ValueSetExpander | None = None,
    **_: Any,
) -> pa.Table:
    """The engine entry point of :func:`cmio.views.run` (``engine="postgres"``).

    Args:
        view: a parsed view or ViewDefinition JSON.
        source: a PostgreSQL :class:`~cmio.store.Repository` (its current resources), or
            resources (dicts) loaded into a temporary table of ``database``.
        database: the PostgreSQL URL (default: the repository's).
        model: the FHIR model.
        limit: at most this many rows.
        terminology: expands the value sets of ``memberOf()`` into temporary tables
            the query joins against (:mod:`cmio.views.valuesets`).

    Raises:
        PostgresViewError: the query failed on the data.
        ValueError: no PostgreSQL database to run in.
    """
    parsed = _view(view)
    url = _url(source, database)
    schema = arrow_schema(parsed)
    with psycopg.connect(url, autocommit=True) as conn:
        # JIT compiling the large expressions of a view costs seconds to minutes (e.g.
        # 25 s for an unrolled repeat over three resources) and rarely pays back.
        conn.execute("SET jit = off")
        relation = None
        if not isinstance(source, Repository):
            relation = _load_temp(conn, source, parsed.resource)
        compiler = ViewCompiler(PostgresDialect(), model)
        load_value_sets(conn, compiler.value_sets(parsed), terminology, temporary=True)
        sql = postgres_sql(parsed, relation=relation, compiler=compiler)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            rows = conn.execute(sql).fetchall()
        except psycopg.Error as exc:
            raise PostgresViewError(_reason(exc), "ViewDefinition") from exc
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table(
        [pa.array(list(c), f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def _load_temp(conn: psycopg.Connection[Any], resources: Iterable[Any], rtype: str) -> str:
    """Resources of ``rtype`` in a temporary table; the relation selecting them."""
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS cmio_view_input (resource jsonb)")
    conn.execute("TRUNCATE cmio_view_input")
    items = []
    for item in resources:
        data = item if isinstance(item, Mapping) else json.loads(item)
        if data.get("resourceType") == rtype:
            items.append((Jsonb(data),))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO cmio_view_input (resource) VALUES (%s)", items)
    return "SELECT resource FROM cmio_view_input"


def load_value_sets(
    conn: psycopg.Connection[Any],
    valuesets: Iterable[str],
    terminology: ValueSetExpander | None,
    *,
    temporary: bool,
) -> None:
    """(Re)create each value set's expansion table (``key text PRIMARY KEY``) in ``conn``.

    Temporary tables live as long as the connection (and hide permanent ones of the
    same name); permanent ones back SQL views created by :func:`create_view`.
    """
    for url in valuesets:
        keys = expansion_keys(terminology, url)
        name = table_name(url)
        kind = "TEMPORARY TABLE" if temporary else "TABLE"
        qualified = f"pg_temp.{name}" if temporary else name
        # emptied and refilled, not dropped: SQL views over it stay valid
        conn.execute(f"CREATE {kind} IF NOT EXISTS {name} (key text PRIMARY KEY)")
        conn.execute(f"TRUNCATE {qualified}")
        with conn.cursor().copy(f"COPY {qualified} (key) FROM STDIN") as copy:
            for key in keys:
                copy.write_row((key,))


def create_view(
    view: View | Mapping[str, Any],
    database: str,
    name: str | None = None,
    *,
    materialized: bool = False,
    model: Model | None = None,
    terminology: ValueSetExpander | None = None,
) -> str:
    """Create (or replace) a PostgreSQL view of a ViewDefinition over the store's table.

    Args:
        view: a parsed view or ViewDefinition JSON.
        database: the store's PostgreSQL URL.
        name: the SQL name (default: the view's ``name``).
        materialized: a ``MATERIALIZED VIEW`` (refresh it with ``REFRESH MATERIALIZED
            VIEW name``) instead of a plain view.
        model: the FHIR model.
        terminology: expands the value sets of ``memberOf()`` into tables the view
            joins against (re-create the view to pick up a changed value set).

    Returns:
        The view's SQL name.

    Raises:
        ValueError: no usable name.
    """
    parsed = _view(view)
    name = name or parsed.name
    if not name or not _NAME.match(name):
        raise ValueError(f"{name!r} is not a usable SQL name (letters, digits, _; 63 at most)")
    compiler = ViewCompiler(PostgresDialect(), model)
    sql = postgres_sql(parsed, compiler=compiler)
    kind = "MATERIALIZED VIEW" if materialized else "VIEW"
    with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
        conn.execute(f'DROP {kind} IF EXISTS "{name}"')
        load_value_sets(conn, compiler.value_sets(parsed), terminology, temporary=False)
        conn.execute(f'CREATE {kind} "{name}" AS {sql}')
    return name


def _reason(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
