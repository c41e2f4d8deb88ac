"""Compile a view's projection tree into one SQL query (sqlglot) for a dialect.

The query (see :mod:`cmio.views.dialects.base` for the shape) reads a source
relation with a ``resource`` JSON column and returns the view's columns in order,
typed as :mod:`cmio.views.columns` says. Implements the processing algorithm of
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#processing-algorithm
with list expressions: per resource, a list of row structs, then unnested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from cmio.model import Model, load_model
from cmio.views.columns import kind_of
from cmio.views.dialects.base import Dialect, SqlKind
from cmio.views.parse import ViewDefinitionError
from cmio.views.repeat import REPEAT_DEPTH, compile_repeat
from cmio.views.sqlpath import PathCompiler
from cmio.views.sqltypes import FType, Val
from cmio.views.tree import Column, ForEach, ForEachOrNull, Repeat, Select, View
from cmio.views.typed import TypedLayoutUnsupported
from cmio.views.valuesets import table_name

__all__ = ["REPEAT_DEPTH", "Relation", "ViewCompiler"]

_ROW = "_row"
_LIST = "_rowlist"

Relation = exp.Expression | Callable[[Sequence[str]], exp.Expression]
"""A source relation, or (typed dialects) a function of the top-level element names the
view reads returning the relation with those typed columns."""


@dataclass(frozen=True, slots=True)
class _Rows:
    """The rows of a select for one focus: one row (``fields``) or a list of structs."""

    fields: dict[str, exp.Expression] | None = None
    rows: exp.Expression | None = None


class ViewCompiler:
    """Turns views into SQL for one engine.

    Args:
        dialect: the engine's :class:`~cmio.views.dialects.base.Dialect`.
        model: the FHIR model (default: the R4 model, loaded once).
    """

    def __init__(self, dialect: Dialect, model: Model | None = None) -> None:
        self.dialect = dialect
        self.model = model if model is not None else load_model()

    def value_sets(self, view: View) -> list[str]:
        """The value sets the view's ``memberOf()`` calls join against (their expansion
        tables, :func:`cmio.views.valuesets.table_name`, must exist when the query runs)."""
        if not any("memberOf" in path for path in view.paths()):
            return []  # no call to find: the query need not be built
        build = _Build(self, view)
        build.query(exp.to_table("_none"), False)
        return list(dict.fromkeys(url for _, url in build.members))

    def compile(self, view: View, source: Relation, *, filter_type: bool = True) -> exp.Select:
        """The query computing ``view`` over ``source``.

        Args:
            view: the validated view.
            source: a table or subquery with a ``resource`` column (the resource JSON);
                for a typed dialect, one with the typed columns of :mod:`cmio.views.typed`
                (or a function of the column names returning it).
            filter_type: keep only rows whose ``resourceType`` is the view's (False
                when the source holds only that type).

        Raises:
            ViewDefinitionError: the view is invalid for its resource type (e.g. a
                ``where`` that is not boolean); :class:`~cmio.views.sqlpath.UnsupportedExpression`
                for FHIRPath outside the SQL subset.
            TypedLayoutUnsupported: (typed dialects) the view reads what the typed
                columns do not hold.
        """
        return _Build(self, view).query(source, filter_type)

    def sql(self, view: View, source: Relation, *, filter_type: bool = True) -> str:
        """:meth:`compile` rendered as the engine's SQL text."""
        return self.dialect.render(self.compile(view, source, filter_type=filter_type))


class _Build:
    def __init__(self, owner: ViewCompiler, view: View) -> None:
        typedef = owner.model.types.get(view.resource)
        if typedef is None or typedef.kind != "resource":
            raise ViewDefinitionError(
                f"unknown resource type {view.resource}", "ViewDefinition.resource"
            )
        self.d = owner.dialect
        self.view = view
        self.keys: list[tuple[tuple[str, ...], bool]] = []
        self.members: list[tuple[exp.Expression, str]] = []
        self.paths = PathCompiler(
            self.d, owner.model, view.constants, self._prefetch, self._membership
        )
        self.root = Val(
            exp.column("_resource"), False, FType(view.resource, typedef.json_index), path=()
        )

    def _prefetch(self, path: tuple[str, ...], text: bool) -> exp.Expression:
        key = (path, text)
        if key not in self.keys:
            self.keys.append(key)
        return exp.column(f"_p{self.keys.index(key)}")

    def _membership(self, keys: exp.Expression, valueset: str) -> exp.Expression:
        """The column ``_m<i>``: whether any of ``keys`` is in the value set (``memberOf()``)."""
        self.members.append((keys, valueset))
        return exp.column(f"_m{len(self.members) - 1}")

    def _typed_source(
        self, source: Relation, wanted: list[tuple[str, tuple[tuple[str, ...], bool]]]
    ) -> exp.Select:
        """The pre-projection over typed columns: each path read from its top-level column."""
        if any(not path for _, (path, _) in wanted):
            raise TypedLayoutUnsupported("the whole resource")
        tops = list(dict.fromkeys(path[0] for _, (path, _) in wanted))
        relation = source(tops) if callable(source) else source
        if not wanted:
            return exp.select(exp.alias_(exp.Literal.number(1), "_one")).from_(relation)
        return exp.select(
            *[
                exp.alias_(self.d.json_path(exp.column(path[0], quoted=True), path[1:], text), n)
                for n, (path, text) in wanted
            ]
        ).from_(relation)

    def _source(self, source: Relation, filter_type: bool, used: set[str]) -> exp.Expression:
        """The pre-projection: each resource's prefetched values, parsed once per resource."""
        d = self.d
        resource = exp.column("resource")
        keys = [(f"_p{i}", key) for i, key in enumerate(self.keys) if f"_p{i}" in used]
        wanted = [(name, key) for name, key in keys]
        if filter_type:
            wanted.append(("_type", (("resourceType",), True)))
        keep = ["_resource"] if "_resource" in used else []
        if d.typed:
            if keep:
                raise TypedLayoutUnsupported("the whole resource")
            return self._finish(self._typed_source(source, wanted), wanted, [], filter_type, used)
        assert not callable(source)
        groups: dict[bool, list[tuple[str, tuple[str, ...]]]] = {False: [], True: []}
        for name, (path, text) in wanted:
            groups[text].append((name, path))
        lists = {
            text: d.json_paths(resource, [p for _, p in members], text)
            for text, members in groups.items()
            if members
        }
        if lists and all(v is not None for v in lists.values()):
            names = {False: "_pj", True: "_ps"}
            inner = exp.select(
                *[exp.alias_(v, names[t]) for t, v in lists.items() if v is not None],
                *[exp.alias_(resource, "_resource") for _ in keep],
            ).from_(source)
            columns = [
                exp.alias_(d.element(exp.column(names[t]), exp.Literal.number(i)), name)
                for t, members in groups.items()
                for i, (name, _) in enumerate(members)
            ]
            query = exp.select(*columns, *[exp.column(k) for k in keep]).from_(
                inner.subquery("_docs")
            )
        else:
            query = exp.select(
                *[exp.alias_(d.json_path(resource, p, t), n) for n, (p, t) in wanted],
                *[exp.alias_(resource, "_resource") for _ in keep],
            ).from_(source)
        if not wanted and not keep:
            query = exp.select(exp.alias_(exp.Literal.number(1), "_one")).from_(source)
        return self._finish(query, wanted, keep, filter_type, used)

    def _finish(
        self,
        query: exp.Select,
        wanted: list[tuple[str, tuple[tuple[str, ...], bool]]],
        keep: list[str],
        filter_type: bool,
        used: set[str],
    ) -> exp.Expression:
        """The pre-projection filtered by type and joined to the value sets it tests."""
        d = self.d
        columns_out = [name for name, _ in wanted] + keep
        if not wanted and not keep:
            columns_out = ["_one"]
        if filter_type:
            query = (
                exp.select("*")
                .from_(query.subquery("_typed"))
                .where(
                    exp.EQ(
                        this=exp.column("_type"), expression=exp.Literal.string(self.view.resource)
                    )
                )
            )
        for number, (member_keys, valueset) in enumerate(self.members):
            if f"_m{number}" in used:
                out = f"_m{number}"
                query = d.member_join(
                    query.subquery(f"_mj{number}"),
                    columns_out,
                    member_keys,
                    table_name(valueset),
                    out,
                )
                columns_out.append(out)
        return query.subquery("_src")

    # -- columns ----------------------------------------------------------------------------
    def _kind(self, column: Column, value: Val) -> SqlKind:
        if column.type is not None:
            return kind_of(column.type)
        return PathCompiler.json_kind(value) or "string"

    def _column(self, column: Column, focus: Val, index: exp.Expression) -> exp.Expression:
        value = self.paths.compile(column.path, focus, index, f"{column.element}.path")
        kind = self._kind(column, value)
        d = self.d
        if column.collection:
            if not value.many:
                item = self.paths.typed(value, kind)
                return exp.Case(
                    ifs=[
                        exp.If(
                            this=exp.Is(this=value.sql, expression=exp.Null()),
                            true=d.empty_list(kind),
                        )
                    ],
                    default=exp.Cast(this=d.make_list([item]), to=d.list_type(kind)),
                )
            var = self.paths.fresh()
            each = Val(exp.column(var), False, value.ftype, value.kind)
            return exp.Cast(
                this=d.transform(value.sql, var, self.paths.typed(each, kind)), to=d.list_type(kind)
            )
        single = self.paths.single(
            value, f"{column.element}.path {column.path!r} (set collection: true)"
        )
        typed = self.paths.typed(single, kind)
        return typed if single.kind == kind else exp.Cast(this=typed, to=d.sql_type(kind))

    def _null(self, column: Column) -> exp.Expression:
        kind = kind_of(column.type)
        return self.d.empty_list(kind) if column.collection else self.d.null(kind)

    def _nulls(self, select: Select) -> dict[str, exp.Expression]:
        return {c.name: self._null(c) for c in select.all_columns()}

    # -- rows --------------------------------------------------------------------------------
    def _struct(self, select: Select, fields: dict[str, exp.Expression]) -> exp.Expression:
        return self.d.struct([(name, fields[name]) for name in select.column_names()])

    def _as_list(self, select: Select, rows: _Rows) -> exp.Expression:
        if rows.rows is not None:
            return rows.rows
        assert rows.fields is not None
        return self.d.make_list([self._struct(select, rows.fields)])

    def _body(self, select: Select, focus: Val, index: exp.Expression) -> _Rows:
        singles, lists = self._parts(select, focus, index)
        if not lists:
            return _Rows(fields=singles)
        return _Rows(rows=self._cross(select, singles, lists))

    def _parts(
        self, select: Select, focus: Val, index: exp.Expression
    ) -> tuple[dict[str, exp.Expression], list[tuple[list[str], exp.Expression]]]:
        """A select's one-row columns, and its lists of rows to cross with them."""
        singles = {c.name: self._column(c, focus, index) for c in select.columns}
        lists: list[tuple[list[str], exp.Expression]] = []
        for child in select.selects:
            part = self._rows(child, focus, index)
            if part.fields is not None:
                singles.update(part.fields)
            else:
                assert part.rows is not None
                lists.append((child.column_names(), part.rows))
        if select.union_all:
            branches = [self._as_list(b, self._rows(b, focus, index)) for b in select.union_all]
            lists.append((select.union_all[0].column_names(), self.d.concat(branches)))
        return singles, lists

    def _cross(
        self,
        select: Select,
        singles: dict[str, exp.Expression],
        lists: Sequence[tuple[list[str], exp.Expression]],
    ) -> exp.Expression:
        d = self.d
        fields = dict(singles)
        variables: list[tuple[str, exp.Expression]] = []
        for names, rows in lists:
            var = self.paths.fresh("r")
            variables.append((var, rows))
            for name in names:
                fields[name] = d.field(exp.column(var), name)
        body = self.d.struct([(n, fields[n]) for n in select.column_names() if n in fields])
        for depth, (var, rows) in enumerate(reversed(variables)):
            body = d.transform(rows, var, body)
            if depth > 0:
                body = d.flatten(body)
        return body

    def _rows(self, select: Select, focus: Val, index: exp.Expression) -> _Rows:
        iteration = select.iteration
        if iteration is None:
            return self._body(select, focus, index)
        d = self.d
        if isinstance(iteration, Repeat):
            items = compile_repeat(self.paths, iteration, focus, index, f"{select.element}.repeat")
        else:
            kind = "forEach" if isinstance(iteration, ForEach) else "forEachOrNull"
            items = self.paths.compile(iteration.path, focus, index, f"{select.element}.{kind}")
        if isinstance(items.sql, exp.Null):
            nulls = self.d.make_list([self._struct(select, self._nulls(select))])
            if isinstance(iteration, ForEachOrNull):
                return _Rows(rows=nulls)
            return _Rows(rows=self.d.filter(nulls, self.paths.fresh("z"), exp.false()))
        var, position = self.paths.fresh("f"), self.paths.fresh("i")
        item = self.paths.item(items, var)
        body = self._body(select, item, exp.column(position))
        listed = self.paths.as_list(items)
        if body.fields is not None:
            rows = d.transform(listed, var, self._struct(select, body.fields), position)
        else:
            assert body.rows is not None
            rows = d.flatten(d.transform(listed, var, body.rows, position))
        if isinstance(iteration, ForEachOrNull):
            empty = Val(exp.Null(), False, items.ftype, items.kind)
            null_row = self._nulls(select)
            null_row.update(
                {c.name: self._column(c, empty, exp.Literal.number(0)) for c in select.columns}
            )
            rows = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.EQ(this=d.length(listed), expression=exp.Literal.number(0)),
                        true=d.make_list([self._struct(select, null_row)]),
                    )
                ],
                default=rows,
            )
        return _Rows(rows=rows)

    # -- query --------------------------------------------------------------------------------
    def query(self, source: Relation, filter_type: bool) -> exp.Select:
        d = self.d
        view = self.view
        # The root select has no iteration: its one-row columns stay plain columns next to
        # the unnest of at most one list of rows (several lists are crossed first).
        singles, lists = self._parts(view.select, self.root, exp.Literal.number(0))
        if len(lists) > 1:
            rows = self._cross(view.select, {}, lists)
            lists = [([n for names, _ in lists for n in names], rows)]
        conditions: list[exp.Expression] = []
        for where in view.where:
            value = self.paths.compile(where.path, self.root, exp.Literal.number(0), where.element)
            kind = PathCompiler.json_kind(value)
            if kind not in ("boolean", None) or (kind is None and value.ftype.index is not None):
                raise ViewDefinitionError(
                    f"where path {where.path!r} must return a boolean, not {value.ftype.code or kind}",
                    where.element,
                )
            single = self.paths.single(value, where.element)
            conditions.append(
                exp.Coalesce(this=self.paths.typed(single, "boolean"), expressions=[exp.false()])
            )
        items: list[exp.Expression] = [
            exp.Alias(this=e, alias=exp.to_identifier(name)) for name, e in singles.items()
        ]
        if lists:
            items.append(d.unnest_rows(lists[0][1], _ROW))
        used = {c.name for e in (*items, *conditions) for c in e.find_all(exp.Column)}
        for number, (keys, _) in enumerate(self.members):
            if f"_m{number}" in used:
                used.update(c.name for c in keys.find_all(exp.Column))
        inner = self._source(source, filter_type, used)
        if lists and d.project_before_unnest:
            # one-row columns once per resource, below the unnest (not once per row)
            before = exp.select(*items[:-1], exp.alias_(lists[0][1], _LIST)).from_(inner)
            for condition in conditions:
                before = before.where(condition)
            unnest = d.unnest_rows(exp.column(_LIST), _ROW)
            middle = exp.select(*[exp.column(name) for name in singles], unnest).from_(
                before.subquery("_one")
            )
        else:
            middle = exp.select(*items).from_(inner)
            for condition in conditions:
                middle = middle.where(condition)
        columns = [
            exp.column(name)
            if name in singles
            else exp.alias_(d.field(exp.column(_ROW), name), name)
            for name in view.column_names()
        ]
        return exp.select(*columns).from_(middle.subquery("_rows"))
