"""PostgreSQL: views over the store's ``jsonb`` column, with arrays and correlated subqueries.

Renders the :class:`~cmio.views.dialects.base.Dialect` operations in PostgreSQL 13+
(https://www.postgresql.org/docs/15/functions-json.html,
https://www.postgresql.org/docs/15/functions-array.html). PostgreSQL has no lambdas:

* JSON items are ``jsonb`` (``->`` for a property); lists are SQL arrays (``jsonb[]``
  for JSON items, ``text[]``/``numeric[]``... for typed values), so indexing keeps
  the item type;
* ``transform``/``filter`` are ``ARRAY(SELECT .. FROM unnest(list) WITH ORDINALITY
  .. ORDER BY ordinality)``; ``flatten`` of a transform unnests the body laterally
  (PostgreSQL arrays of arrays are rectangular matrices, not lists of lists);
* a row struct is a ``jsonb`` object (anonymous records have no field names), so
  :meth:`field` returns ``jsonb``: the engine casts the output columns
  (:mod:`cmio.views.postgres_engine`);
* :meth:`fail` raises through a failing ``integer`` cast in the guarding ``CASE``
  condition; the cast reads the row, so the planner cannot fold it ahead of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.generator import Generator
from sqlglot.generators.postgres import PostgresGenerator

from cmio.views.dialects.base import Dialect, SqlKind, call
from cmio.views.dialects.boundaries import Snippets, boundary_sql, boundary_templates

__all__ = ["PostgresDialect"]

_TYPES: dict[str, str] = {
    "string": "TEXT",
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "decimal": "NUMERIC(38, 10)",
}
_TRANSFORM = "pg_transform"
_FIELD = "pg_field"
_FAIL = "pg_fail"
_MAX_ARGS = 100  # FUNC_MAX_ARGS: jsonb_build_object takes at most 50 pairs
_BOUNDARIES = boundary_templates(
    Snippets(
        month_end="to_char(CAST(date_trunc('month', CAST({d} || '-01' AS DATE))"
        " + INTERVAL '1 month' - INTERVAL '1 day' AS DATE), 'YYYY-MM-DD')",
        zone="COALESCE((regexp_match({s}, '(Z|[+-][0-9][0-9]:[0-9][0-9])$'))[1], '')",
        has_dot="strpos({v}, '.') > 0",
        split="split_part({v}, {sep}, {n})",
        decimal="NUMERIC(38, 10)",
    )
)


@cache
def _parsed(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, dialect="postgres")
    assert isinstance(parsed, exp.Expression)
    return parsed


def _template(sql: str, **parts: exp.Expression) -> exp.Expression:
    """``sql`` with each placeholder column ``__name`` replaced by ``parts[name]``."""

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__"):
            return parts[node.name[2:]].copy()
        return node

    return _parsed(sql).copy().transform(fill, copy=False)


def _jsonb(value: exp.Expression) -> exp.Expression:
    """``value`` as jsonb: JSON items may arrive as JSON text (prefetched containers)."""
    if isinstance(value, exp.Cast) and value.to.this == exp.DataType.Type.JSONB:
        return value
    return exp.Cast(this=value, to=exp.DataType.build("JSONB", dialect="postgres"))


def _subscript(items: exp.Expression, index: exp.Expression) -> exp.Expression:
    """``(items)[index]`` with ``index`` printed as given (1-based; no sqlglot offset rewrite)."""
    return exp.Bracket(this=exp.Paren(this=items), expressions=[index], json_access=True)


def _transform_parts(array: exp.Expression) -> tuple[exp.Expression, exp.Expression]:
    """The ``(items, body)`` of an ``ARRAY(SELECT body FROM unnest(items) ...)`` made by
    :meth:`PostgresDialect.transform`."""
    select = array.expressions[0]
    unnest = select.args["from_"].this
    assert isinstance(select, exp.Select) and isinstance(unnest, exp.Unnest)
    return unnest.expressions[0], select.expressions[0]


class _Generator(PostgresGenerator):
    """sqlglot's PostgreSQL generator, ``unnest`` printed as written.

    sqlglot infers the type of each ``unnest`` argument (to print an array of ``json``
    as ``json_array_elements``): a walk of the whole argument, nested ``unnest`` in
    nested ``unnest``, quadratic in the query (seconds for an unrolled ``repeat``).
    View queries unnest SQL arrays (``jsonb[]``, ``text[]``...), never ``json`` ones.
    """

    def unnest_sql(self, expression: exp.Unnest) -> str:
        return Generator.unnest_sql(self, expression)


def _ident(name: str) -> str:
    return exp.to_identifier(name).sql(dialect="postgres")


class PostgresDialect(Dialect):
    """The PostgreSQL rendering of the view operations."""

    name = "postgres"

    # -- JSON ---------------------------------------------------------------------------
    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return exp.JSONExtract(this=_jsonb(json), expression=exp.Literal.string(key))

    def json_path(self, json: exp.Expression, path: Sequence[str], text: bool) -> exp.Expression:
        keys = ",".join('"' + k.replace('"', '\\"') + '"' for k in path)
        operator = "#>>" if text else "#>"
        return _template(f"__j {operator} '{{{keys}}}'", j=_jsonb(json))

    def parse_text(self, text: exp.Expression, kind: SqlKind) -> exp.Expression:
        if kind == "string":
            return text
        if kind == "boolean":
            return _template(
                "CASE WHEN __t IN ('true', 'false') THEN CAST(__t AS BOOLEAN) END", t=text
            )
        value = _template(
            "CASE WHEN __t ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$'"
            " THEN CAST(__t AS NUMERIC) END",
            t=text,
        )
        return exp.Cast(this=value, to=self.sql_type(kind))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return self.json_array_items(self.json_child(json, key))

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return _template(
            "ARRAY(SELECT jsonb_array_elements(CASE WHEN jsonb_typeof(__j) = 'array'"
            " THEN __j END))",
            j=_jsonb(json),
        )

    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        if isinstance(json, exp.Null):
            return self.null(kind)
        json = _jsonb(json)
        if kind == "string":
            return _template("__j #>> '{}'", j=json)
        if kind == "boolean":
            return _template(
                "CASE WHEN jsonb_typeof(__j) = 'boolean' THEN CAST(__j AS BOOLEAN) END", j=json
            )
        target = "BIGINT" if kind == "integer" else "NUMERIC"
        value = _template(
            f"CASE WHEN jsonb_typeof(__j) = 'number' THEN CAST(__j AS {target})"
            " WHEN jsonb_typeof(__j) = 'string' AND (__j #>> '{}') ~ '^-?[0-9]+(\\.[0-9]+)?$'"
            f" THEN CAST(__j #>> '{{}}' AS NUMERIC) END",
            j=json,
        )
        return exp.Cast(this=value, to=self.sql_type(kind))

    # -- lists --------------------------------------------------------------------------
    def transform(
        self, items: exp.Expression, var: str, body: exp.Expression, index: str | None = None
    ) -> exp.Expression:
        order = f"{var}_o"
        if index is not None:
            position = exp.Paren(
                this=exp.Sub(this=exp.column(order), expression=exp.Literal.number(1))
            )
            body = body.transform(
                lambda node: (
                    position.copy()
                    if isinstance(node, exp.Column) and node.name == index and not node.table
                    else node
                )
            )
        out = _template(
            f"ARRAY(SELECT __body FROM unnest(__items) WITH ORDINALITY"
            f" AS {_ident(var + '_t')}({_ident(var)}, {_ident(order)}) ORDER BY {_ident(order)})",
            body=body,
            items=items,
        )
        # only the variable: sqlglot deep-copies meta with the node, and subtrees kept
        # there were copied again at every level (minutes for a repeat's unrolled levels)
        out.meta[_TRANSFORM] = var
        return out

    def filter(self, items: exp.Expression, var: str, condition: exp.Expression) -> exp.Expression:
        order = f"{var}_o"
        return _template(
            f"ARRAY(SELECT {_ident(var)} FROM unnest(__items) WITH ORDINALITY"
            f" AS {_ident(var + '_t')}({_ident(var)}, {_ident(order)})"
            f" WHERE COALESCE(__cond, FALSE) ORDER BY {_ident(order)})",
            items=items,
            cond=condition,
        )

    def flatten(self, lists: exp.Expression) -> exp.Expression:
        var = lists.meta.get(_TRANSFORM)
        if var is None:
            raise NotImplementedError("postgres: flatten of a list that is not a transform")
        items, body = _transform_parts(lists)
        order, inner = f"{var}_o", f"{var}_e"
        return _template(
            f"ARRAY(SELECT {_ident(inner)} FROM unnest(__items) WITH ORDINALITY"
            f" AS {_ident(var + '_t')}({_ident(var)}, {_ident(order)})"
            f" CROSS JOIN LATERAL unnest(__body) WITH ORDINALITY"
            f" AS {_ident(var + '_u')}({_ident(inner)}, {_ident(var + '_p')})"
            f" ORDER BY {_ident(order)}, {_ident(var + '_p')})",
            items=items,
            body=body,
        )

    def concat(self, lists: Sequence[exp.Expression]) -> exp.Expression:
        parts = list(lists)
        if any(p.meta.get(_FIELD) for p in parts) and not all(p.meta.get(_FIELD) for p in parts):
            # a list kept in a row struct (jsonb) joined with an SQL array: the
            # repeat path keys, lists of integers
            parts = [
                _template("ARRAY(SELECT CAST(jsonb_array_elements_text(__j) AS BIGINT))", j=p)
                if p.meta.get(_FIELD)
                else p
                for p in parts
            ]
        out = parts[0]
        for part in parts[1:]:
            out = exp.DPipe(this=out, expression=part)
        return exp.Paren(this=out) if len(parts) > 1 else out

    def length(self, items: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=call("cardinality", items), expressions=[exp.Literal.number(0)])

    def element(self, items: exp.Expression, index: exp.Expression) -> exp.Expression:
        return _subscript(items, exp.Add(this=index, expression=exp.Literal.number(1)))

    def make_list(self, items: Sequence[exp.Expression]) -> exp.Expression:
        values = list(items)
        if all(isinstance(v, exp.Null) for v in values):
            return exp.Cast(
                this=exp.Array(expressions=values),
                to=exp.DataType.build("JSONB[]", dialect="postgres"),
            )
        return exp.Array(expressions=values)

    def join_strings(self, items: exp.Expression, separator: exp.Expression) -> exp.Expression:
        return call("array_to_string", items, separator)

    def sort(self, items: exp.Expression) -> exp.Expression:
        """Row structs (jsonb) in the order of their ``key`` field (integer lists)."""
        return _template(
            "ARRAY(SELECT _s FROM unnest(__items) AS _st(_s) ORDER BY"
            " ARRAY(SELECT CAST(jsonb_array_elements_text(_s -> 'key') AS BIGINT)))",
            items=items,
        )

    # -- structs and rows ---------------------------------------------------------------
    def struct(self, fields: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        args: list[exp.Expression] = []
        for name, value in fields:
            args.extend((exp.Literal.string(name), value))
        chunks = [
            call("jsonb_build_object", *args[i : i + _MAX_ARGS])
            for i in range(0, len(args), _MAX_ARGS)
        ] or [call("jsonb_build_object")]
        out = chunks[0]
        for chunk in chunks[1:]:
            out = exp.DPipe(this=out, expression=chunk)
        return exp.Paren(this=out) if len(chunks) > 1 else out

    def field(self, struct: exp.Expression, name: str) -> exp.Expression:
        out = exp.Paren(this=exp.JSONExtract(this=struct, expression=exp.Literal.string(name)))
        out.meta[_FIELD] = True
        return out

    def unnest_rows(self, rows: exp.Expression, alias: str) -> exp.Expression:
        return exp.Alias(this=call("unnest", rows), alias=exp.to_identifier(alias))

    def boundary(self, text: exp.Expression, ftype: str, high: bool) -> exp.Expression | None:
        return boundary_sql(_BOUNDARIES, ftype, high, text, "postgres")

    def member_join(
        self,
        source: exp.Expression,
        names: Sequence[str],
        keys: exp.Expression,
        table: str,
        out: str,
    ) -> exp.Select:
        # A semi-join per row: PostgreSQL probes the table's primary key for each key.
        member = _template(
            f"CASE WHEN cardinality(__k) > 0 THEN EXISTS (SELECT 1 FROM unnest(__k) AS _u(_key)"
            f" JOIN {_ident(table)} AS _vs ON _vs.key = _u._key) END",
            k=keys,
        )
        return exp.select(*[exp.column(n) for n in names], exp.alias_(member, out)).from_(source)

    # -- scalars ------------------------------------------------------------------------
    def sql_type(self, kind: SqlKind) -> exp.DataType:
        return exp.DataType.build(_TYPES[kind], dialect="postgres")

    def list_type(self, kind: SqlKind) -> exp.DataType:
        return exp.DataType.build(f"{_TYPES[kind]}[]", dialect="postgres")

    def empty_list(self, kind: SqlKind) -> exp.Expression:
        return exp.Cast(this=exp.Array(expressions=[]), to=self.list_type(kind))

    def fail(self, message: str) -> exp.Expression:
        out = exp.Null()
        out.meta[_FAIL] = message
        return out

    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        match = call("regexp_match", text, exp.Literal.string(pattern))
        return _subscript(match, exp.Literal.number(group))

    # -- output ---------------------------------------------------------------------------
    def render(self, expression: exp.Expression) -> str:
        """The SQL text; a :meth:`fail` branch moves into its ``CASE`` condition as a cast
        that fails (``invalid input syntax for type integer: "<message>"``)."""

        def raise_in_condition(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.If) and _FAIL in node.args["true"].meta:
                message = str(node.args["true"].meta[_FAIL])
                # The failing cast reads the row (through the condition): a constant one
                # is folded by the planner for functions in FROM (unnest) and fails
                # whatever the data. The nested CASE evaluates it only when the guard holds.
                boom = _template(
                    "CAST(concat(__m, left(CAST(__c AS TEXT), 0)) AS INTEGER) = 0",
                    m=exp.Literal.string(message),
                    c=exp.Paren(this=node.args["this"]),
                )
                condition = exp.Case(
                    ifs=[exp.If(this=exp.Paren(this=node.args["this"]), true=boom)],
                    default=exp.false(),
                )
                return exp.If(this=condition, true=exp.Null())
            return node

        # one copy (the transform's); printing it needs none
        return _Generator(dialect=self.name).generate(
            expression.transform(raise_in_condition), copy=False
        )
