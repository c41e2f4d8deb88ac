"""The contract between the view compiler and an SQL engine.

The compiler (:mod:`cmio.views.compiler`) turns a view into ONE query whose
shape every engine shares:

* a source relation with one column ``resource`` holding each resource as JSON
  (DuckDB: ``JSON``; Spark: a JSON string; PostgreSQL: ``jsonb``);
* a pre-projection of every path of non-repeating properties the view reads from
  the resource (``subject.reference``, ``valueQuantity.value``, ``code.coding``),
  as JSON or as text (:meth:`Dialect.json_paths` when the engine can extract them
  all with one parse, else one :meth:`Dialect.json_path` each);
* per resource, one expression of type *list of row structs*, built with the list
  operations below (``forEach`` is :meth:`transform` + :meth:`flatten`,
  ``unionAll`` is :meth:`concat`, ``%rowIndex`` is the transform's index);
* :meth:`unnest_rows` turns that list into output rows.

FHIRPath values are either JSON items (a JSON scalar or object; SQL NULL is the
empty collection) or *lists* of JSON items, or typed SQL scalars of one
:data:`SqlKind`. A dialect subclass implements every abstract method; each gets
and returns sqlglot expressions, and :meth:`render` prints them in the engine's
SQL. Lambda variables are plain column names (:func:`sqlglot.exp.column`) chosen
by the compiler and unique within a query.

To add an engine: subclass :class:`Dialect`, set ``name`` (a sqlglot dialect),
implement the abstract methods and, if needed, override the concrete ones.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Literal

from sqlglot import exp

__all__ = ["Dialect", "NestedValues", "SqlKind", "call"]

SqlKind = Literal["string", "boolean", "integer", "decimal"]
"""The typed SQL scalars of view columns (see :mod:`cmio.views.columns`)."""


def call(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call ``name(args...)`` rendered verbatim in every dialect."""
    return exp.Anonymous(this=name, expressions=list(args))


class Dialect(abc.ABC):
    """The JSON, list and struct operations one SQL engine must render.

    Attributes:
        name: the sqlglot dialect name used by :meth:`render` (``duckdb``, ``spark``, ``postgres``).
        typed: see below.
    """

    name: str = ""
    typed: bool = False
    """True when the source's elements are typed columns (struct/list/scalar, see
    :mod:`cmio.views.typed`) rather than one JSON document: the compiler then reads
    top-level elements as columns and never needs an object's JSON text."""
    project_before_unnest: bool = False
    """True when the engine computes the select-list expressions beside an unnest once
    per output row (Spark's ``Generate`` then ``Project``): the compiler then computes
    the view's one-row columns in a subquery below the unnest, once per resource."""

    # -- JSON -------------------------------------------------------------------------
    @abc.abstractmethod
    def json_child(self, json: exp.Expression, key: str) -> exp.Expression:
        """The JSON value of property ``key`` of a JSON object (NULL when absent)."""

    @abc.abstractmethod
    def json_children(self, json: exp.Expression, key: str) -> exp.Expression:
        """The items of the JSON array property ``key`` as a list of JSON (empty list when absent)."""

    @abc.abstractmethod
    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        """A JSON scalar as a typed SQL value; ``string`` of an object or array is its JSON text."""

    def json_path(self, json: exp.Expression, path: Sequence[str], text: bool) -> exp.Expression:
        """The value at a path of object properties: its JSON, or with ``text`` its text
        (a string's value; the JSON text of numbers, booleans, objects). NULL when absent."""
        value = json
        for key in path:
            value = self.json_child(value, key)
        return self.json_scalar(value, "string") if text else value

    def json_paths(
        self, json: exp.Expression, paths: Sequence[Sequence[str]], text: bool
    ) -> exp.Expression | None:
        """All of :meth:`json_path` at once as one list (document parsed once), or None
        when the engine has no such function (the compiler then calls :meth:`json_path`)."""
        return None

    def prefetch(self, resource: exp.Expression, keys: Sequence[str]) -> list[exp.Expression]:
        """The JSON of several top-level properties (kept for dialects written against the
        first version of this contract; the compiler now calls :meth:`json_paths`)."""
        return [self.json_child(resource, key) for key in keys]

    def parse_text(self, text: exp.Expression, kind: SqlKind) -> exp.Expression:
        """A value's text (see :meth:`json_path`) as a typed scalar (NULL if it does not parse)."""
        return exp.Cast(this=text, to=self.sql_type(kind))

    def json_array_items(self, json: exp.Expression) -> exp.Expression:
        """The items of a JSON array value as a list of JSON (used on prefetched arrays)."""
        raise NotImplementedError(f"{self.name}: json_array_items")

    # -- lists --------------------------------------------------------------------------
    @abc.abstractmethod
    def transform(
        self, items: exp.Expression, var: str, body: exp.Expression, index: str | None = None
    ) -> exp.Expression:
        """``[body for var in items]``; ``index`` (if given) names the item's 0-based position."""

    @abc.abstractmethod
    def filter(self, items: exp.Expression, var: str, condition: exp.Expression) -> exp.Expression:
        """The items for which ``condition`` (over ``var``) is true."""

    @abc.abstractmethod
    def flatten(self, lists: exp.Expression) -> exp.Expression:
        """A list of lists concatenated into one list."""

    @abc.abstractmethod
    def concat(self, lists: Sequence[exp.Expression]) -> exp.Expression:
        """Several lists of the same type concatenated."""

    @abc.abstractmethod
    def length(self, items: exp.Expression) -> exp.Expression:
        """The number of items of a list (0 for an empty list)."""

    @abc.abstractmethod
    def element(self, items: exp.Expression, index: exp.Expression) -> exp.Expression:
        """The item at 0-based ``index`` (NULL when out of range)."""

    @abc.abstractmethod
    def make_list(self, items: Sequence[exp.Expression]) -> exp.Expression:
        """A list literal of the given expressions (at least one)."""

    @abc.abstractmethod
    def sort(self, items: exp.Expression) -> exp.Expression:
        """A list of structs sorted ascending (by their fields in order; lists compare
        lexicographically). Used by ``repeat`` to order nodes by their ``key`` path."""

    @abc.abstractmethod
    def join_strings(self, items: exp.Expression, separator: exp.Expression) -> exp.Expression:
        """A list of strings joined with ``separator``."""

    # -- structs and rows ---------------------------------------------------------------
    @abc.abstractmethod
    def struct(self, fields: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
        """A struct (named fields) value: one output row."""

    @abc.abstractmethod
    def field(self, struct: exp.Expression, name: str) -> exp.Expression:
        """Field ``name`` of a struct value."""

    @abc.abstractmethod
    def unnest_rows(self, rows: exp.Expression, alias: str) -> exp.Expression:
        """The select-list expression that turns a list of row structs into rows named ``alias``."""

    # -- scalars ------------------------------------------------------------------------
    @abc.abstractmethod
    def sql_type(self, kind: SqlKind) -> exp.DataType:
        """The SQL type of a kind (decimal: exact, 38 digits, scale 10)."""

    def cast(self, value: exp.Expression, kind: SqlKind) -> exp.Expression:
        """A typed SQL value converted to another kind."""
        return exp.Cast(this=value, to=self.sql_type(kind))

    def null(self, kind: SqlKind) -> exp.Expression:
        """A typed NULL."""
        return exp.Cast(this=exp.Null(), to=self.sql_type(kind))

    def list_type(self, kind: SqlKind) -> exp.DataType:
        """The SQL type of a list of ``kind`` (for collection columns)."""
        return exp.DataType(
            this=exp.DataType.Type.ARRAY, expressions=[self.sql_type(kind)], nested=True
        )

    def empty_list(self, kind: SqlKind) -> exp.Expression:
        """An empty typed list."""
        return exp.Cast(this=exp.Array(expressions=[]), to=self.list_type(kind))

    @abc.abstractmethod
    def fail(self, message: str) -> exp.Expression:
        """An expression that aborts the query with ``message`` when evaluated."""

    @abc.abstractmethod
    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        """Group ``group`` of the first match of ``pattern`` in ``text`` (NULL or '' if none)."""

    def reference_key(self, reference: exp.Expression, wanted: str | None) -> exp.Expression:
        """The id part of a reference string (``Type/id``, absolute, or ``.../_history/v``),
        NULL when it is not one or when its type is not ``wanted``
        (``getReferenceKey([type])``; keys are resource ids)."""
        pattern = r"([^/]+)/([^/]+)(/_history/[^/]+)?$"
        key: exp.Expression = exp.Nullif(
            this=self.regex_group(reference, pattern, 2), expression=exp.Literal.string("")
        )
        if wanted is None:
            return key
        rtype = self.regex_group(reference, pattern, 1)
        return exp.Case(
            ifs=[exp.If(this=exp.EQ(this=rtype, expression=exp.Literal.string(wanted)), true=key)]
        )

    def boundary(self, text: exp.Expression, ftype: str, high: bool) -> exp.Expression | None:
        """``lowBoundary()``/``highBoundary()`` at the default precision of a value's text
        (``ftype``: ``decimal``, ``date``, ``dateTime``, ``instant`` or ``time``), or None
        when the engine does not compile them (the compiler then refuses the path).
        See https://build.fhir.org/fhirpath.html#lowboundaryprecision-integer-decimal-date-datetime-time.
        """
        return None

    def concat_strings(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        """String concatenation (NULL if either is NULL)."""
        return exp.DPipe(this=left, expression=right)

    def divide(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        """Exact decimal division (NULL when dividing by zero)."""
        return exp.Div(
            this=left, expression=exp.Nullif(this=right, expression=exp.Literal.number(0))
        )

    # -- value sets -------------------------------------------------------------------------
    def row_id(self) -> exp.Expression:
        """A number unique to each row of a relation (within one query)."""
        return exp.Window(this=exp.RowNumber())

    def unnest_outer(self, items: exp.Expression) -> exp.Expression:
        """The select-list expression giving one row per item, and one NULL row for an
        empty or NULL list."""
        raise NotImplementedError(f"{self.name}: unnest_outer")

    def any_value(self, value: exp.Expression) -> exp.Expression:
        """The aggregate keeping any one value of a group (all are equal where it is used)."""
        return exp.AnyValue(this=value)

    def member_join(
        self,
        source: exp.Expression,
        names: Sequence[str],
        keys: exp.Expression,
        table: str,
        out: str,
    ) -> exp.Select:
        """``source``'s columns ``names`` plus the boolean column ``out``: whether any of the
        row's ``keys`` (a list of strings) is a ``key`` of ``table`` (NULL: no keys).

        The default is one pass over ``source``: each row numbered and unnested by key,
        LEFT JOINed to the table, grouped back by row number (engines decorrelate this
        into a hash join against the small table, see :mod:`cmio.views.valuesets`).
        """
        # the row number below the unnest: numbered once per row, not per key
        listed = exp.select(
            *[exp.column(n) for n in names],
            exp.alias_(self.row_id(), "_rid"),
            exp.alias_(keys, "_mkl"),
        ).from_(source)
        inner = exp.select(
            *[exp.column(n) for n in names],
            exp.column("_rid"),
            exp.alias_(self.unnest_outer(exp.column("_mkl")), "_mk"),
        ).from_(listed.subquery("_ml"))
        key = exp.column("_mk", table="_mi")
        hit = exp.Not(this=exp.Is(this=exp.column("key", table="_vs"), expression=exp.Null()))
        member = exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=exp.Count(this=key), expression=exp.Literal.number(0)),
                    true=exp.Null(),
                )
            ],
            default=exp.LogicalOr(this=hit),
        )
        return (
            exp.select(
                *[exp.alias_(self.any_value(exp.column(n, table="_mi")), n) for n in names],
                exp.alias_(member, out),
            )
            .from_(inner.subquery("_mi"))
            .join(
                exp.alias_(exp.to_table(table), "_vs", table=True),
                on=exp.EQ(this=exp.column("key", table="_vs"), expression=key),
                join_type="left",
            )
            .group_by(exp.column("_rid", table="_mi"))
        )

    # -- output ---------------------------------------------------------------------------
    def render(self, expression: exp.Expression) -> str:
        """The expression as this engine's SQL text."""
        return expression.sql(dialect=self.name)


class NestedValues(Dialect):
    """The view operations over typed columns (:mod:`cmio.views.typed`): the "JSON"
    values are the engine's own struct, list and scalar values, so a scalar's text is a
    cast and every path is walked child by child (nothing is parsed at query time).

    Put it before the engine's JSON dialect in the bases
    (``class TypedX(NestedValues, XDialect)``): its methods then replace that dialect's
    JSON-function forms, while the engine's own child access (``json_child``) is defined
    by the typed subclass.
    """

    typed = True

    def json_scalar(self, json: exp.Expression, kind: SqlKind) -> exp.Expression:
        if kind == "string":
            return exp.Cast(this=json, to=self.sql_type("string"))
        return exp.TryCast(this=json, to=self.sql_type(kind))

    json_path = Dialect.json_path

    def json_paths(
        self, json: exp.Expression, paths: Sequence[Sequence[str]], text: bool
    ) -> exp.Expression | None:
        return None
