"""DuckDB: views over the ``JSON`` type with list lambdas (the embedded default engine).

Renders the :class:`~cmio.views.dialects.base.Dialect` operations with DuckDB's
JSON extension (https://duckdb.org/docs/stable/data/json/json_functions) and
list functions (https://duckdb.org/docs/stable/sql/functions/list): JSON paths
with ``json_extract``, ``forEach`` with ``list_transform``, rows with ``unnest``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from cmio.views.dialects.base import Dialect, SqlKind, call

__all__ = ["DuckDbDialect"]

_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "decimal": "DECIMAL(38, 10)",
}
_DATE_LOW = "CASE length({d}) WHEN 4 THEN {d} || '-01-01' WHEN 7 THEN {d} || '-01' ELSE {d} END"
_DATE_HIGH = (
    "CASE length({d}) WHEN 4 THEN {d} || '-12-31' "
    "WHEN 7 THEN strftime(last_day(CAST({d} || '-01' AS DATE)), '%Y-%m-%d') ELSE {d} END"
)
_TIME_LOW = (
    "CASE length({t}) WHEN 2 THEN {t} || ':00:00.000' WHEN 5 THEN {t} || ':00.000' "
    "WHEN 8 THEN {t} || '.000' WHEN 10 THEN {t} || '00' "
    "WHEN 11 THEN {t} || '0' ELSE {t} END"
)
_TIME_HIGH = (
    "CASE length({t}) WHEN 2 THEN {t} || ':59:59.999' WHEN 5 THEN {t} || ':59.999' "
    "WHEN 8 THEN {t} || '.999' WHEN 10 THEN {t} || '00' "
    "WHEN 11 THEN {t} || '0' ELSE {t} END"
)
_TZ = "regexp_extract(split_part({v}, 'T', 2), '(Z|[+-][0-9][0-9]:[0-9][0-9])$', 1)"
_CLOCK = "regexp_replace(split_part({v}, 'T', 2), '(Z|[+-][0-9][0-9]:[0-9][0-9])$', '')"


def _datetime(high: bool) -> str:
    day = (_DATE_HIGH if high else _DATE_LOW).format(d="split_part({v}, 'T', 1)")
    clock = (_TIME_HIGH if high else _TIME_LOW).format(t=_CLOCK)
    whole, zone = ("23:59:59.999", "-12:00") if high else ("00:00:00.000", "+14:00")
    return (
        f"{day} || 'T' || CASE WHEN {_CLOCK} = '' THEN '{whole}' ELSE {clock} END "
        f"|| CASE WHEN {_TZ} = '' THEN '{zone}' ELSE {_TZ} END"
    )


def _decimal(high: bool) -> str:
    scale = "CASE WHEN contains({v}, '.') THEN length(split_part({v}, '.', 2)) ELSE 0 END"
    half = f"CAST('0.' || repeat('0', {scale}) || '5' AS DECIMAL(38, 10))"
    return f"CAST({{v}} AS DECIMAL(38, 10)) {'+' if high else '-'} {half}"


_BOUNDARIES: dict[tuple[str, bool], str] = {
    ("decimal", False): _decimal(False),
    ("decimal", True): _decimal(True),
    ("date", False): _DATE_LOW.format(d="{v}"),
    ("date", True): _DATE_HIGH.format(d="{v}"),
    ("time", False): _TIME_LOW.format(t="{v}"),
    ("time", True): _TIME_HIGH.format(t="{v}"),
    ("dateTime", False): _datetime(False),
    ("dateTime", True): _datetime(True),
    ("instant", False): _datetime(False),
    ("instant", True): _datetime(True),
}
"""lowBoundary/highBoundary as SQL templates over the value's text ``{v}``."""

_NO_JSON = exp.Cast(
    this=exp.Array(expressions=[]), to=exp.DataType.build("JSON[]", dialect="duckdb")
)


def _step(key: str) -> str:
    escaped = key.replace('"', '\\"')
    return f'."{escaped}"'


def _path(key: str, many: bool = False) -> exp.Expression:
    escaped = key.replace('"', '\\"')
    return exp.Literal.string(f'$."{escaped}"[*]' if many else f'$."{escaped}"')


class DuckDbDialect(Dialect):
    """The DuckDB rendering of the view operations."""

    name = "duckdb"

    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return call("json_extract", json, _path(key))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return exp.Coalesce(
            this=call("json_extract", json, _path(key, many=True)), expressions=[_NO_JSON.copy()]
        )

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return exp.Coalesce(
            this=call("json_extract", json, exp.Literal.string("$[*]")),
            expressions=[_NO_JSON.copy()],
        )

    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        if kind == "string":
            return call("json_extract_string", json, exp.Literal.string("$"))
        return exp.TryCast(this=json, to=self.sql_type(kind))

    def json_path(self, json: exp.Expression, path: Sequence[str], text: bool) -> exp.Expression:
        if not path and not text:
            return json
        literal = exp.Literal.string("$" + "".join(_step(key) for key in path))
        return call("json_extract_string" if text else "json_extract", json, literal)

    def json_paths(
        self, json: exp.Expression, paths: Sequence[Sequence[str]], text: bool
    ) -> exp.Expression | None:
        literals = [exp.Literal.string("$" + "".join(_step(key) for key in path)) for path in paths]
        function = "json_extract_string" if text else "json_extract"
        return call(function, json, exp.Array(expressions=literals))

    def parse_text(self, text: exp.Expression, kind: SqlKind) -> exp.Expression:
        return exp.TryCast(this=text, to=self.sql_type(kind))

    def transform(
        self, items: exp.Expression, var: str, body: exp.Expression, index: str | None = None
    ) -> exp.Expression:
        params = [exp.to_identifier(var)]
        if index is not None:
            position = f"{index}_1"
            params.append(exp.to_identifier(position))
            zero_based = exp.Paren(
                this=exp.Sub(this=exp.column(position), expression=exp.Literal.number(1))
            )
            body = body.transform(
                lambda node: (
                    zero_based.copy()
                    if isinstance(node, exp.Column) and node.name == index and not node.table
                    else node
                )
            )
        return call("list_transform", items, exp.Lambda(this=body, expressions=params))

    def filter(self, items: exp.Expression, var: str, condition: exp.Expression) -> exp.Expression:
        cond = exp.Coalesce(this=condition, expressions=[exp.false()])
        return call(
            "list_filter", items, exp.Lambda(this=cond, expressions=[exp.to_identifier(var)])
        )

    def flatten(self, lists: exp.Expression) -> exp.Expression:
        return call("flatten", lists)

    def concat(self, lists: Sequence[exp.Expression]) -> exp.Expression:
        if len(lists) == 1:
            return lists[0]
        return call("list_concat", *lists)

    def length(self, items: exp.Expression) -> exp.Expression:
        return call("len", items)

    def element(self, items: exp.Expression, index: exp.Expression) -> exp.Expression:
        return call("list_extract", items, exp.Add(this=index, expression=exp.Literal.number(1)))

    def make_list(self, items: Sequence[exp.Expression]) -> exp.Expression:
        return exp.Array(expressions=list(items))

    def sort(self, items: exp.Expression) -> exp.Expression:
        return call("list_sort", items)

    def join_strings(self, items: exp.Expression, separator: exp.Expression) -> exp.Expression:
        return call("array_to_string", items, separator)

    def struct(self, fields: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier(name), expression=value)
                for name, value in fields
            ]
        )

    def field(self, struct: exp.Expression, name: str) -> exp.Expression:
        return call("struct_extract", struct, exp.Literal.string(name))

    def unnest_rows(self, rows: exp.Expression, alias: str) -> exp.Expression:
        return exp.Alias(this=call("unnest", rows), alias=exp.to_identifier(alias))

    def unnest_outer(self, items: exp.Expression) -> exp.Expression:
        empty = exp.LTE(
            this=exp.Coalesce(this=self.length(items), expressions=[exp.Literal.number(0)]),
            expression=exp.Literal.number(0),
        )
        none = exp.Array(expressions=[self.null("string")])
        return call("unnest", exp.Case(ifs=[exp.If(this=empty, true=none)], default=items))

    def sql_type(self, kind: SqlKind) -> exp.DataType:
        return exp.DataType.build(_TYPES[kind], dialect="duckdb")

    def fail(self, message: str) -> exp.Expression:
        return call("error", exp.Literal.string(message))

    def reference_key(self, reference: exp.Expression, wanted: str | None) -> exp.Expression:
        # split_part is much cheaper than a regex; versioned references take the regex.
        def part(index: int) -> exp.Expression:
            return call("split_part", reference, exp.Literal.string("/"), exp.Literal.number(index))

        empty = exp.Literal.string("")
        simple: exp.Expression = exp.Nullif(this=part(-1), expression=empty)
        check: exp.Expression = (
            exp.NEQ(this=part(-2), expression=empty)
            if wanted is None
            else exp.EQ(this=part(-2), expression=exp.Literal.string(wanted))
        )
        history = call("contains", reference, exp.Literal.string("/_history/"))
        return exp.Case(
            ifs=[
                exp.If(this=history, true=super().reference_key(reference, wanted)),
                exp.If(this=check, true=simple),
            ]
        )

    def boundary(self, text: exp.Expression, ftype: str, high: bool) -> exp.Expression | None:
        template = _BOUNDARIES.get((ftype, high))
        if template is None:
            return None
        parsed: exp.Expression = exp.maybe_parse(
            template.format(v="_boundary_input"), dialect="duckdb"
        )
        filled: exp.Expression = parsed.transform(
            lambda node: (
                text.copy()
                if isinstance(node, exp.Column) and node.name == "_boundary_input"
                else node
            )
        )
        return filled

    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        return call("regexp_extract", text, exp.Literal.string(pattern), exp.Literal.number(group))
