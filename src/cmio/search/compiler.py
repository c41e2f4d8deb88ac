"""One search compiler: a :class:`~cmio.store.base.SearchQuery` to SQL through sqlglot.

The statement is built as sqlglot expressions with named placeholders and
rendered for the backend's dialect (``sqlite`` or ``postgres``); placeholders
are then turned into the stores' positional ``?``. See
https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlglot.expressions as exp

from cmio.indexing.values import normalize
from cmio.model import Model
from cmio.search.columns import resource_condition
from cmio.search.request import Chain, Filter, Has, Node, UnknownParameterError, clause_key, resolve
from cmio.search.shapes import Shapes, Template
from cmio.search.sql import Params, SqlBuilder, eq, table_as, unindexed
from cmio.search.terminology import TerminologyProvider
from cmio.store._query import Sql
from cmio.store.base import SearchQuery

__all__ = ["ESTIMATE_BOUND", "SORT_COLUMNS", "SearchCompiler", "parse_sort", "selectivity"]

#: ``_total=estimate`` counts at most this many matches
ESTIMATE_BOUND = 10_000
_PLACEHOLDER = re.compile(r":p(\d+)\b|%\(p(\d+)\)s")
_WHERE = "cmio_where"  # marks where the rendered search condition goes
#: per parameter type: the index table and the column sorted on
SORT_COLUMNS = {
    "string": ("string_index", "norm"),
    "token": ("token_index", "value"),
    "reference": ("reference_index", "target_id"),
    "date": ("date_index", "low"),
    "number": ("number_index", "low"),
    "quantity": ("quantity_index", "low"),
    "uri": ("uri_index", "value"),
}


def _resource() -> exp.Expr:
    return table_as("resource", "r")


_COLUMNS = ("_id", "_type", "_lastUpdated")


def selectivity(node: Node) -> int:
    """A rough rank of how few rows a clause keeps (lowest first).

    The most selective clause drives the query (``IN``); the others are probed
    per candidate (``EXISTS``), so SQLite never materializes a broad clause
    such as ``date=ge2020`` over a whole type. A chain whose every step is narrow
    (``patient.name=smith``: few patients, so few references to them) drives
    before a code, which can match a large share of a type (a common lab test).
    """
    if isinstance(node, Chain) and _narrow(node):
        return 3
    if isinstance(node, Has | Chain):
        return 12
    if node.modifier in ("missing", "not", "not-in"):
        return 18
    if node.code == "_id":
        return 0
    if node.code in ("_type", "_lastUpdated"):
        return 16
    if node.type == "reference" or (node.type == "token" and node.code == "identifier"):
        return 2
    if node.type == "token":
        return 4 if any("|" in v for v in node.values) else 6
    if node.type in ("string", "uri", "text"):
        return 8
    return 14


def _narrow(node: Node) -> bool:
    """Whether a clause matches few resources whatever the data: an id, a reference, an
    identifier, a ``system|code``, a string of at least three characters, or a chain of
    such clauses."""
    if isinstance(node, Has):
        return False
    if isinstance(node, Chain):
        return all(_narrow(inner) for _, inner in node.inner)
    if node.modifier not in (None, "exact") or not node.values:
        return False
    if node.code == "_id" or node.type == "reference":
        return True
    if node.type == "token":
        return node.code == "identifier" or all(
            "|" in v and not v.endswith("|") for v in node.values
        )
    return node.type == "string" and all(len(normalize(v)) >= 3 for v in node.values)


def parse_sort(model: Model, rtype: str | None, sort: Sequence[str]) -> list[tuple[str, bool, str]]:
    """``_sort`` keys as ``(code, descending, type)`` (https://hl7.org/fhir/R4/search.html#sort).

    Raises:
        UnknownParameterError: an unknown or unsortable parameter.
    """
    out: list[tuple[str, bool, str]] = []
    for item in sort:
        desc = item.startswith("-")
        code = item[1:] if desc else item
        if code in ("_id", "_lastUpdated"):
            out.append((code, desc, "special"))
            continue
        spd = model.search_params_for(rtype).get(code) if rtype else None
        if spd is None or spd.type not in SORT_COLUMNS:
            raise UnknownParameterError(f"Cannot sort by {item!r}", "_sort")
        out.append((code, desc, spd.type))
    return out


class SearchCompiler:
    """Compiles searches for one model.

    Args:
        model: parameter definitions.
        terminology: optional provider for terminology modifiers.
    """

    def __init__(self, model: Model, terminology: TerminologyProvider | None = None) -> None:
        self.model = model
        self.terminology = terminology
        #: compiled statements by query shape
        self.shapes = Shapes()

    def nodes(self, query: SearchQuery) -> list[Node]:
        """Resolve the query's clauses (raises UnknownParameterError)."""
        out: list[Node] = []
        for clause in query.clauses:
            if not clause.values:
                raise UnknownParameterError(
                    f"search parameter {clause.name!r} has no value", clause.name
                )
            out.append(resolve(self.model, query.type, clause_key(clause), clause.values))
        return out

    def compile(self, query: SearchQuery, dialect: str) -> tuple[Sql, Sql | None]:
        """The page query (columns ``type, id, version, last_updated, data``) and count query.

        A search of a shape compiled before reuses its SQL text with its own bind values
        (:mod:`cmio.search.shapes`).

        Raises:
            InvalidRequestError: unknown parameters, malformed values, unsortable keys.
        """
        return self.shapes.compile(self, query, dialect, self.template)

    def template(self, query: SearchQuery, dialect: str) -> tuple[Template, list[object]]:
        """Compile ``query`` afresh: its statements with, per ``?``, the index of its value
        in the bind values returned alongside."""
        params = Params()
        # The condition is rendered once and set into the page and count statements,
        # which hold a marker in its place (the same text as rendering it in each).
        where = self.where(query, params, dialect)
        where_text = where.sql(dialect=dialect, copy=False)
        columns = [exp.column(c, "r") for c in ("type", "id", "version", "last_updated", "data")]
        keyed = dialect == "sqlite"  # the page's row ids first, then their rows (_key_first)
        page = (
            exp.select(*([exp.alias_(exp.column("rowid", "r"), "k_row")] if keyed else columns))
            .from_(_resource(), copy=False)
            .where(exp.Placeholder(this=_WHERE), copy=False)
        )
        page_where = where_text
        if query.after is not None and not query.sort:
            page = page.where(self._after(query, params), copy=False)
            if isinstance(where, exp.Connector):  # as sqlglot parenthesizes an AND-ed one
                page_where = f"({where_text})"
        keys = self._order(query, params, dialect)
        if not keyed:
            for key in keys:
                page = page.order_by(key, copy=False)
        page = page.limit(params(max(0, query.count)), copy=False).offset(
            params(max(0, query.offset)), copy=False
        )
        tail = ""
        if keyed:
            page, tail = _key_first(page, keys)
        page_sql, page_slots = _render(page, dialect, page_where)
        if keyed:
            page_sql = _KEYED_HEAD + page_sql + tail
        if not query.total:
            return Template(page_sql, page_slots, None, ()), params.values
        if query.estimate:  # counting stops at ESTIMATE_BOUND matches
            bounded = (
                exp.select(exp.Literal.number(1), copy=False)
                .from_(_resource(), copy=False)
                .where(exp.Placeholder(this=_WHERE), copy=False)
                .limit(params(ESTIMATE_BOUND), copy=False)
            )
            count = exp.select(exp.Count(this=exp.Star()), copy=False).from_(
                bounded.subquery("b", copy=False), copy=False
            )
            return Template(
                page_sql, page_slots, *_render(count, dialect, where_text)
            ), params.values
        count = (
            exp.select(exp.Count(this=exp.Star()), copy=False)
            .from_(_resource(), copy=False)
            .where(exp.Placeholder(this=_WHERE), copy=False)
        )
        return Template(page_sql, page_slots, *_render(count, dialect, where_text)), params.values

    def where(self, query: SearchQuery, params: Params, dialect: str = "sqlite") -> exp.Expr:
        """The WHERE condition of a search over ``resource r`` (for ``dialect``)."""
        builder = SqlBuilder(params, self.terminology, dialect)
        conds: list[exp.Expr] = [exp.not_(exp.column("deleted", "r"), copy=False)]
        if query.snapshot is not None:
            conds.append(exp.column("last_updated", "r") <= params(query.snapshot))
        nodes = sorted(self.nodes(query), key=selectivity)
        pair = exp.Tuple(expressions=[exp.column("type", "r"), exp.column("id", "r")])
        key: exp.Expr = exp.column("id", "r")
        if query.type is None:
            key = pair
        elif nodes and not (isinstance(nodes[0], Filter) and nodes[0].code in _COLUMNS):
            # An index clause drives: ``(r.type, r.id) IN (...)`` probes the primary key;
            # the type test must not tempt SQLite into scanning the type in date order.
            conds.append(eq(unindexed(exp.column("type", "r"), params), params(query.type)))
            key = pair
        else:
            conds.append(eq(exp.column("type", "r"), params(query.type)))
        driving = True
        inline: exp.Select | None = None  # the driving select, when probes go inside it
        for node in nodes:
            if isinstance(node, Filter) and node.code in _COLUMNS:
                conds.append(resource_condition(node, params, "r"))
                driving = driving and node.code != "_id"
            elif inline is not None:  # probed per driving index row, before the resource
                inline.where(builder.condition(node, _DRIVER_ID, correlated=True), copy=False)
            else:
                probe_key = exp.column("id", "r") if not driving and query.type else key
                cond = builder.condition(node, probe_key, correlated=not driving)
                conds.append(cond)
                if driving and query.type is not None and isinstance(node, Filter):
                    inline = _driver(cond)
                driving = False
        return exp.and_(*conds, copy=False)

    @staticmethod
    def _after(query: SearchQuery, params: Params) -> exp.Expr:
        """Keyset condition: after the cursor in the default ``(last_updated, type, id)``
        order (the type is fixed in a typed search, so ``(last_updated, id)`` suffices)."""
        assert query.after is not None
        lu, rtype, rid = query.after
        names = ("last_updated", "id") if query.type else ("last_updated", "type", "id")
        values = (lu, rid) if query.type else (lu, rtype, rid)
        return exp.GT(
            this=exp.Tuple(expressions=[exp.column(n, "r") for n in names]),
            expression=exp.Tuple(expressions=[params(v) for v in values]),
        )

    def _order(self, query: SearchQuery, params: Params, dialect: str) -> list[exp.Ordered]:
        def natural(column: str, desc: bool = False) -> exp.Ordered:
            # the dialect's own null order: no NULLS clause, so indexes can serve it
            first = (not desc) if dialect == "sqlite" else desc
            return exp.Ordered(this=exp.column(column, "r"), desc=desc, nulls_first=first)

        keys: list[exp.Ordered] = []
        seen: set[str] = set()
        for code, desc, ptype in parse_sort(
            self.model, query.type, query.sort or ("_lastUpdated",)
        ):
            if code in seen:
                continue
            seen.add(code)
            if ptype == "special":
                column = "last_updated" if code == "_lastUpdated" else "id"
                keys.append(natural(column, desc))
                continue
            table, column = SORT_COLUMNS[ptype]
            agg = exp.Max if desc else exp.Min
            sub = (
                exp.select(agg(this=exp.column(column, "s")), copy=False)
                .from_(table_as(table, "s"), copy=False)
                .where(eq(exp.column("resource_type", "s"), exp.column("type", "r")), copy=False)
                .where(eq(exp.column("resource_id", "s"), exp.column("id", "r")), copy=False)
                .where(eq(unindexed(exp.column("param", "s"), params), params(code)), copy=False)
            )
            keys.append(exp.Ordered(this=sub.subquery(), desc=desc, nulls_first=False))
        for column in ("type", "id"):
            if column not in seen and not (column == "id" and "_id" in seen):
                keys.append(natural(column))
        return keys


#: the driving select's id column, which the other clauses probe (:func:`_driver`)
_DRIVER_ID = exp.column("resource_id", "d")


def _driver(cond: exp.Expr) -> exp.Select | None:
    """The select of a driving ``(r.type, r.id) IN (SELECT x.resource_type, x.resource_id
    FROM <index> AS x ...)`` renamed to alias ``d``, so that the other clauses' probes
    (``EXISTS (... AND x.resource_id = d.resource_id)``) go inside it; None for another
    form (negated, a chain or ``_has``).

    A candidate then reads the resource table only when every probe holds: SQLite would
    otherwise look up each driving row's resource (primary-key index, then the row)
    before probing. ``Observation?patient=X&code=C&date=ge...`` reads 6 resources, not
    the patient's 458 Observations.
    """
    if not isinstance(cond, exp.In) or not isinstance(cond.args.get("query"), exp.Subquery):
        return None
    select = cond.args["query"].this
    source = select.args.get("from_")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(select, exp.Select) or not isinstance(table, exp.Table):
        return None
    names = [(c.table, c.name) for c in select.selects if isinstance(c, exp.Column)]
    if table.alias != "x" or names != [("x", "resource_type"), ("x", "resource_id")]:
        return None
    table.set("alias", exp.Identifier(this="d", quoted=False))
    for node in select.walk(prune=lambda n: n is not select and _binds_x(n)):
        if isinstance(node, exp.Column) and node.table == "x":
            node.set("table", exp.Identifier(this="d", quoted=False))
    return select


def _binds_x(node: exp.Expr) -> bool:
    """Whether ``node`` is a select of its own table aliased ``x`` (whose ``x.`` columns
    are its own; a nested select without one, such as a composite's component probe,
    refers to the driving row)."""
    if not isinstance(node, exp.Select):
        return False
    sources = [node.args.get("from_"), *(node.args.get("joins") or [])]
    return any(isinstance(t, exp.Table) and t.alias == "x" for s in sources if s for t in [s.this])


#: the key-first page's fixed outer part (:func:`_key_first`), as text
_KEYED_HEAD = "SELECT r.type, r.id, r.version, r.last_updated, r.data FROM ("
_KEYED_JOIN = ") AS k CROSS JOIN resource AS r ON r.rowid = k.k_row ORDER BY "


def _key_first(keys_page: exp.Select, keys: list[exp.Ordered]) -> tuple[exp.Select, str]:
    """The page in two steps: ``keys_page`` (``SELECT r.rowid AS k_row ... LIMIT ?``) sorts
    only the matches' row ids and sort keys, then the page's rows are read by row id.

    Sorting the matches with their stored bytes (``SELECT r.data ... ORDER BY``) copies
    every match's JSON into SQLite's sorter, though only the page's are returned. A sort
    key that is a subquery is selected once under an alias (``k0``...) and ordered by
    it; plain columns are ordered as themselves, so an index can still serve the order.
    Returns ``keys_page`` with its keys and order, and the text that follows it after
    :data:`_KEYED_HEAD`: the join by row id and the same order over the page's keys (a
    few rows), written as text since it has no values (a fresh compile renders less).
    """
    outer: list[str] = []
    for i, key in enumerate(keys):
        alias = f"k{i}"
        keys_page = keys_page.select(exp.alias_(key.this, alias, copy=False), copy=False)
        flags = {"desc": key.args.get("desc"), "nulls_first": key.args.get("nulls_first")}
        inner = (
            key
            if isinstance(key.this, exp.Column)
            else exp.Ordered(this=exp.column(alias), **flags)
        )
        keys_page = keys_page.order_by(inner, copy=False)
        ordered = exp.Ordered(this=exp.column(alias, "k"), **flags)
        outer.append(ordered.sql(dialect="sqlite", copy=False))
    return keys_page, _KEYED_JOIN + ", ".join(outer)


def _render(statement: exp.Expr, dialect: str, where: str) -> tuple[str, tuple[int, ...]]:
    """Render for ``dialect`` (each tree is rendered once, so without sqlglot's defensive
    copy), set the rendered condition ``where`` in place of its marker, and turn named
    placeholders into ``?``: the text and, per ``?`` in text order, its value's index."""
    marker = f":{_WHERE}" if dialect == "sqlite" else f"%({_WHERE})s"
    text = statement.sql(dialect=dialect, copy=False).replace(marker, where, 1)
    slots: list[int] = []

    def take(match: re.Match[str]) -> str:
        slots.append(int(match.group(1) or match.group(2)))
        return "?"

    return _PLACEHOLDER.sub(take, text), tuple(slots)
