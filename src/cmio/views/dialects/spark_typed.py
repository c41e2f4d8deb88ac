"""Spark SQL over the typed layout: FHIR elements as struct, array and scalar columns.

The same view operations as :class:`~cmio.views.dialects.spark.SparkDialect`, but
the "JSON" values of :mod:`cmio.views.dialects.base` are Spark's own nested values
read from typed Parquet (:mod:`cmio.views.typed`) with schema-on-read: a property
is a struct field, an array property an array, a scalar's text a cast
(https://spark.apache.org/docs/latest/sql-ref-datatypes.html). Nothing is parsed
at query time and Parquet's nested-column pruning reads only the fields the view
uses. What the typed columns do not hold fails analysis (a missing field), and the
engine then runs the JSON form of the view over the ``resource`` column.
"""

from __future__ import annotations

from sqlglot import exp

from cmio.views.dialects.base import NestedValues, call
from cmio.views.dialects.spark import SparkDialect

__all__ = ["TypedSparkDialect"]


class TypedSparkDialect(NestedValues, SparkDialect):
    """The Spark rendering of the view operations over typed columns."""

    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        return exp.Dot(this=json, expression=exp.to_identifier(key, quoted=True))

    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        return self.json_array_items(self.json_child(json, key))

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        return exp.Coalesce(this=json, expressions=[call("array")])
