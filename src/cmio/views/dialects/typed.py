"""DuckDB over the typed layout: FHIR elements as struct, list and scalar columns.

The same view operations as :class:`~cmio.views.dialects.duckdb.DuckDbDialect`, but
the "JSON" values of :mod:`cmio.views.dialects.base` are DuckDB's own nested values
(:mod:`cmio.views.typed`): a property is ``struct_extract``, an array property a
list, a scalar's text a cast (https://duckdb.org/docs/stable/sql/data_types/struct,
https://duckdb.org/docs/stable/sql/functions/list). Nothing is parsed at query time.
The compiler asks for the typed columns of the resource by name (see
:attr:`~cmio.views.dialects.base.Dialect.typed`); what the typed columns do not hold
is refused at bind time (a missing struct key), and the runner then runs the JSON
form of the view over the ``resource`` column.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from cmio.views.dialects.base import SqlKind, call
from cmio.views.dialects.duckdb import DuckDbDialect

__all__ = ["TypedDuckDbDialect"]


class TypedDuckDbDialect(DuckDbDialect):
    """The DuckDB rendering of the view operations over typed columns."""

    typed = True

    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return call("struct_extract", json, exp.Literal.string(key))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return exp.Coalesce(
            this=self.json_child(json, key), expressions=[exp.Array(expressions=[])]
        )

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=json, expressions=[exp.Array(expressions=[])])

    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        if kind == "string":
            return exp.Cast(this=json, to=self.sql_type("string"))
        return exp.TryCast(this=json, to=self.sql_type(kind))

    def json_path(self, json: exp.Expression, path: Sequence[str], text: bool) -> exp.Expression:
        value = json
        for key in path:
            value = self.json_child(value, key)
        return self.json_scalar(value, "string") if text else value

    def json_paths(
        self, json: exp.Expression, paths: Sequence[Sequence[str]], text: bool
    ) -> exp.Expression | None:
        return None
