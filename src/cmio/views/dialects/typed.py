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

from sqlglot import exp

from cmio.views.dialects.base import NestedValues, call
from cmio.views.dialects.duckdb import DuckDbDialect

__all__ = ["TypedDuckDbDialect"]


class TypedDuckDbDialect(NestedValues, DuckDbDialect):
    """The DuckDB rendering of the view operations over typed columns."""

    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return call("struct_extract", json, exp.Literal.string(key))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return exp.Coalesce(
            this=self.json_child(json, key), expressions=[exp.Array(expressions=[])]
        )

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=json, expressions=[exp.Array(expressions=[])])
