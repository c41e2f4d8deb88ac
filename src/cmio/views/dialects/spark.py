"""Spark SQL: views over resources held as JSON strings, with higher-order array functions.

Renders the :class:`~cmio.views.dialects.base.Dialect` operations with Spark's
JSON functions (https://spark.apache.org/docs/latest/sql-ref-functions-builtin.html#json-functions):
``get_json_object`` for one property, ``from_json(.., 'array<string>')`` for the
items of an array (each item stays JSON text: objects and arrays as JSON, strings
unquoted) and ``from_json(.., 'struct<..>')`` to parse a resource once for all
its top-level properties; lists with the lambda functions ``transform``,
``filter``, ``flatten`` and ``concat`` (https://spark.apache.org/docs/latest/sql-ref-functions-builtin.html#array-functions);
rows with ``explode``.

Numbers pass through Jackson's double parsing in Spark's JSON functions, so a
decimal keeps its value (``1.50`` is ``1.5``) up to about 15 significant digits.
Run with ``spark.sql.ansi.enabled=false`` (as
:func:`cmio.views.spark_session.spark_session` does): failed casts are NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from cmio.views.dialects.base import Dialect, SqlKind, call
from cmio.views.dialects.boundaries import Snippets, boundary_sql, boundary_templates

__all__ = ["SparkDialect"]

_TYPES: dict[str, str] = {
    "string": "STRING",
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "decimal": "DECIMAL(38, 10)",
}
_ITEMS = exp.Literal.string("array<string>")
_BOUNDARIES = boundary_templates(
    Snippets(
        month_end="date_format(last_day(CAST({d} || '-01' AS DATE)), 'yyyy-MM-dd')",
        zone="regexp_extract({s}, '(Z|[+-][0-9][0-9]:[0-9][0-9])$', 1)",
        has_dot="instr({v}, '.') > 0",
        split="split_part({v}, {sep}, {n})",
        decimal="DECIMAL(38, 10)",
    )
)


def _path(key: str) -> exp.Expression:
    """A JSONPath for ``get_json_object`` (bracket notation for unusual names)."""
    if key.replace("_", "a").isalnum():
        return exp.Literal.string(f"$.{key}")
    escaped = key.replace("'", "\\'")
    return exp.Literal.string(f"$['{escaped}']")


def _ddl(tree: dict[str, Any]) -> str:
    """The Spark DDL of a struct whose leaves (None) are strings."""
    fields = []
    for key, child in tree.items():
        kind = "string" if child is None else _ddl(child)
        fields.append(f"`{key.replace('`', '``')}`:{kind}")
    return f"struct<{','.join(fields)}>"


class SparkDialect(Dialect):
    """The Spark SQL rendering of the view operations."""

    name = "spark"
    project_before_unnest = True

    # -- JSON ---------------------------------------------------------------------------
    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return call("get_json_object", json, _path(key))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return self.json_array_items(self.json_child(json, key))

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return exp.Coalesce(
            this=call("from_json", json, _ITEMS.copy()), expressions=[self.empty_list("string")]
        )

    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        if kind == "string":
            return json
        return exp.TryCast(this=json, to=self.sql_type(kind))

    def json_paths(
        self, json: exp.Expression, paths: Sequence[Sequence[str]], text: bool
    ) -> exp.Expression | None:
        """One ``from_json`` with a struct schema of the paths, string leaves (a leaf's
        text as ``get_json_object`` gives it): the document is parsed once, not per path."""
        tree: dict[str, Any] = {}
        for path in paths:
            node = tree
            for depth, key in enumerate(path):
                if depth == len(path) - 1:
                    if key in node:  # also the container of another path: one parse each
                        return None
                    node[key] = None
                    break
                child = node.setdefault(key, {})
                if child is None:
                    return None
                node = child
        if not paths or not all(paths):
            return None
        parsed = call("from_json", json, exp.Literal.string(_ddl(tree)))
        items = []
        for path in paths:
            value: exp.Expression = parsed.copy()
            for key in path:
                value = exp.Dot(this=value, expression=exp.to_identifier(key, quoted=True))
            items.append(value)
        return call("array", *items)

    def prefetch(self, resource: exp.Expression, keys: Sequence[str]) -> list[exp.Expression]:
        if len(keys) < 2:
            return super().prefetch(resource, keys)
        fields = ",".join(f"`{key.replace('`', '``')}`:string" for key in keys)
        parsed = call("from_json", resource, exp.Literal.string(f"struct<{fields}>"))
        return [
            exp.Dot(this=parsed.copy(), expression=exp.to_identifier(key, quoted=True))
            for key in keys
        ]

    # -- lists --------------------------------------------------------------------------
    def transform(
        self, items: exp.Expression, var: str, body: exp.Expression, index: str | None = None
    ) -> exp.Expression:
        params = [exp.to_identifier(var)]
        if index is not None:
            params.append(exp.to_identifier(index))
        return call("transform", items, exp.Lambda(this=body, expressions=params))

    def filter(self, items: exp.Expression, var: str, condition: exp.Expression) -> exp.Expression:
        cond = exp.Coalesce(this=condition, expressions=[exp.false()])
        return call("filter", items, exp.Lambda(this=cond, expressions=[exp.to_identifier(var)]))

    def flatten(self, lists: exp.Expression) -> exp.Expression:
        return call("flatten", lists)

    def concat(self, lists: Sequence[exp.Expression]) -> exp.Expression:
        if len(lists) == 1:
            return lists[0]
        return call("concat", *lists)

    def length(self, items: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=call("size", items), expressions=[exp.Literal.number(0)])

    def element(self, items: exp.Expression, index: exp.Expression) -> exp.Expression:
        # ``get`` is 0-based and NULL out of range (Spark 3.4+)
        return call("get", items, index)

    def make_list(self, items: Sequence[exp.Expression]) -> exp.Expression:
        return call("array", *items)

    def join_strings(self, items: exp.Expression, separator: exp.Expression) -> exp.Expression:
        return call("array_join", items, separator)

    def sort(self, items: exp.Expression) -> exp.Expression:
        """Structs sorted by their fields in order (``key`` first: depth-first order)."""
        return call("sort_array", items)

    # -- structs and rows ---------------------------------------------------------------
    def struct(self, fields: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        args: list[exp.Expression] = []
        for name, value in fields:
            args.extend((exp.Literal.string(name), value))
        return call("named_struct", *args)

    def field(self, struct: exp.Expression, name: str) -> exp.Expression:
        return exp.Dot(this=struct, expression=exp.to_identifier(name, quoted=True))

    def unnest_rows(self, rows: exp.Expression, alias: str) -> exp.Expression:
        return exp.Alias(this=call("explode", rows), alias=exp.to_identifier(alias))

    def boundary(self, text: exp.Expression, ftype: str, high: bool) -> exp.Expression | None:
        return boundary_sql(_BOUNDARIES, ftype, high, text, "spark")

    def row_id(self) -> exp.Expression:
        return call("monotonically_increasing_id")

    def unnest_outer(self, items: exp.Expression) -> exp.Expression:
        return call("explode_outer", items)

    def any_value(self, value: exp.Expression) -> exp.Expression:
        return call("first", value)

    # -- scalars ------------------------------------------------------------------------
    def sql_type(self, kind: SqlKind) -> exp.DataType:
        return exp.DataType.build(_TYPES[kind], dialect="spark")

    def list_type(self, kind: SqlKind) -> exp.DataType:
        return exp.DataType.build(f"ARRAY<{_TYPES[kind]}>", dialect="spark")

    def empty_list(self, kind: SqlKind) -> exp.Expression:
        return exp.Cast(this=call("array"), to=self.list_type(kind))

    def fail(self, message: str) -> exp.Expression:
        return call("raise_error", exp.Literal.string(message))

    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        return call("regexp_extract", text, exp.Literal.string(pattern), exp.Literal.number(group))

    def reference_key(self, reference: exp.Expression, wanted: str | None) -> exp.Expression:
        # ``substring_index`` scans without a regex or an array (``split_part`` builds one
        # and costs more than the regex on Spark); versioned references take the regex.
        # Unversioned, the regex matches when the last two segments are not empty.
        slash, empty = exp.Literal.string("/"), exp.Literal.string("")

        def tail(count: int) -> exp.Expression:
            return call("substring_index", reference.copy(), slash, exp.Literal.number(count))

        rtype = call("substring_index", tail(-2), slash.copy(), exp.Literal.number(1))
        check: exp.Expression = (
            exp.NEQ(this=rtype, expression=empty.copy())
            if wanted is None
            else exp.EQ(this=rtype, expression=exp.Literal.string(wanted))
        )
        has_slash = call("contains", reference.copy(), slash.copy())
        history = call("contains", reference.copy(), exp.Literal.string("/_history/"))
        return exp.Case(
            ifs=[
                exp.If(this=history, true=super().reference_key(reference, wanted)),
                exp.If(
                    this=exp.and_(has_slash, check),
                    true=exp.Nullif(this=tail(-1), expression=empty.copy()),
                ),
            ]
        )

    def concat_strings(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        return call("concat", left, right)
