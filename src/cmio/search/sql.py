"""Search nodes compiled to sqlglot conditions over the index tables.

Each node becomes ``<key> IN (SELECT resource_id FROM <index> WHERE ...)`` (or
``NOT IN`` for ``:not`` and ``:missing=true``), where ``<key>`` is the id column
of the resource being filtered; chains and ``_has`` nest those sub-selects.
See https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot.expressions as exp

from cmio.indexing.tables import NAMED_INDEXES, TS_CONFIG
from cmio.indexing.text import query_words
from cmio.search import values as sv
from cmio.search.request import Chain, Filter, Has, Node
from cmio.search.sql_values import (
    Params,
    ValueConditions,
    _any,
    _col,
    eq,
    escape_like,
    table_as,
    unindexed,
)
from cmio.search.terminology import TerminologyProvider, expand_token
from cmio.store.base import InvalidRequestError

__all__ = ["Params", "SqlBuilder", "eq", "escape_like", "table_as", "unindexed"]

_TABLES = {
    "string": "string_index",
    "token": "token_index",
    "reference": "reference_index",
    "date": "date_index",
    "number": "number_index",
    "quantity": "quantity_index",
    "uri": "uri_index",
}


class SqlBuilder(ValueConditions):
    """Compiles nodes into conditions on a resource id column.

    Args:
        params: the statement's bind values.
        terminology: provider for ``:in``/``:not-in``/``:above``/``:below``.
    """

    def __init__(
        self,
        params: Params,
        terminology: TerminologyProvider | None = None,
        dialect: str = "sqlite",
    ) -> None:
        super().__init__(params)
        self.terminology = terminology
        self.dialect = dialect
        self._probe = False
        self._aliases = 0  # correlated _has selects: h1, h2, ...

    def condition(self, node: Node, key: exp.Expr, correlated: bool = False) -> exp.Expr:
        """``key IN (ids of resources matching node)`` (or the negated form).

        With ``correlated`` (and a single-column key) the form is
        ``EXISTS (... AND id = key)`` instead: a probe per candidate row through
        the ``(resource_type, resource_id, param)`` index, which is what the
        less selective clauses of a search want once another clause drives.
        """
        probe = correlated and isinstance(key, exp.Column)
        self._probe = probe
        negate, query = self.ids(node)
        self._probe = False
        cond: exp.Expr
        if probe:
            first = query.selects[0]
            id_col = first.this if isinstance(first, exp.Alias) else first
            cond = exp.Exists(this=query.where(eq(id_col.copy(), key.copy()), copy=False))
        else:
            if isinstance(key, exp.Tuple) and len(query.selects) == 1:
                # (type, id) pairs: SQLite probes the resource primary key with each
                first = query.selects[0]
                id_col = first.this if isinstance(first, exp.Alias) else first
                type_name = {"resource_id": "resource_type", "target_id": "target_type"}
                table = id_col.table if isinstance(id_col, exp.Column) else "x"
                type_col = exp.column(type_name.get(id_col.name, "type"), table)
                query = query.select(type_col, id_col.copy(), append=False, copy=False)
            cond = exp.In(this=key, query=exp.Subquery(this=query))
        return exp.not_(cond, copy=False) if negate else cond

    def ids(self, node: Node) -> tuple[bool, exp.Select]:
        """``(negate, select of matching ids)`` for a node."""
        if isinstance(node, Has):
            # a probe goes by target_id, which the lookup index serves: keep param indexable
            probe, self._probe = self._probe, False
            if probe:
                # per candidate: its referrers, each probed for the inner clause (an IN
                # list inside a correlated subquery is evaluated again for every candidate)
                self._aliases += 1
                alias = f"h{self._aliases}"
                q = self._index("reference_index", node.source, node.code, alias)
                inner_cond = self.condition(node.inner, exp.column("resource_id", alias), True)
                q = q.where(eq(exp.column("target_type", alias), self.p(node.rtype)), copy=False)
                q = q.where(inner_cond, copy=False)
                return False, q.select(exp.column("target_id", alias), append=False, copy=False)
            q = self._index("reference_index", node.source, node.code)
            negate, inner = self.ids(node.inner)
            if self.dialect == "sqlite" and not negate:  # by the sources' ids (owner
                # index), not every row of the parameter through the covering lookup
                # index (schema step 4), which SQLite prefers even when told `param || ''`;
                # a negated inner clause has no ids to go by, and keeps the lookup index
                name = exp.Identifier(this=NAMED_INDEXES[0], quoted=False)
                q.args["from_"].this.set("indexed", exp.Table(this=name))
            q = q.where(eq(_col("target_type"), self.p(node.rtype)), copy=False)
            member = exp.In(this=_col("resource_id"), query=exp.Subquery(this=inner))
            q = q.where(exp.not_(member, copy=False) if negate else member, copy=False)
            return False, q.select(_col("target_id"), append=False, copy=False)
        if isinstance(node, Chain):
            branches: list[exp.Expr] = []
            q = self._index("reference_index", node.rtype, node.code)
            for target, branch in node.inner:
                negate, sub = self.ids(branch)
                member = exp.In(this=_col("target_id"), query=exp.Subquery(this=sub))
                branches.append(
                    exp.and_(
                        eq(_col("target_type"), self.p(target)),
                        exp.not_(member, copy=False) if negate else member,
                        copy=False,
                    )
                )
            return False, q.where(_any(branches), copy=False)
        return self._filter(node)

    def _resource_ids(self, f: Filter) -> exp.Select:
        """``_id``/``_lastUpdated``/``_type`` inside chains and ``_has``: the resource table."""
        from cmio.search.columns import resource_condition

        q = exp.select(exp.alias_(_col("id"), "resource_id", copy=False), copy=False).from_(
            table_as("resource", "x"), copy=False
        )
        if f.rtype is not None:
            q = q.where(eq(_col("type"), self.p(f.rtype)), copy=False)
        else:
            q = q.select(
                exp.alias_(_col("type"), "resource_type", copy=False), append=False, copy=False
            ).select(exp.alias_(_col("id"), "resource_id", copy=False), copy=False)
        return q.where(exp.not_(_col("deleted"), copy=False), copy=False).where(
            resource_condition(f, self.p, "x"), copy=False
        )

    def _index(
        self, table: str, rtype: str | None, code: str, alias: str = "x", keep_param: bool = False
    ) -> exp.Select:
        """The select of ``table``'s rows of parameter ``code``. In a correlated probe,
        ``param`` is kept from the indexes unless ``keep_param`` (whose caller keeps the
        value columns from them instead), so the probe goes by the owner index."""
        q = exp.select(_col("resource_id", alias), copy=False).from_(
            table_as(table, alias), copy=False
        )
        if rtype is not None:
            q = q.where(eq(_col("resource_type", alias), self.p(rtype)), copy=False)
        else:
            q = q.select(_col("resource_type", alias), append=False, copy=False).select(
                _col("resource_id", alias), copy=False
            )
        if self._probe:  # the outermost select of a correlated probe
            self._probe = False
            if not keep_param:
                param = unindexed(_col("param", alias), self.p)
                return q.where(eq(param, self.p(code)), copy=False)
        return q.where(eq(_col("param", alias), self.p(code)), copy=False)

    def _filter(self, f: Filter) -> tuple[bool, exp.Select]:
        if f.code in ("_id", "_lastUpdated", "_type"):
            return False, self._resource_ids(f)
        if f.modifier == "missing":
            flags = {v.lower() for v in f.values}
            if not flags <= {"true", "false"} or len(flags) != 1:
                raise InvalidRequestError(f"{f.code}:missing takes true or false")
            return flags == {"true"}, self._index(_TABLES[f.type], f.rtype, f.code)
        if f.type == "composite":
            return False, self._composite(f)
        if f.type == "text":
            return False, self._text(f)
        if f.type == "list":
            return False, self._list(f)
        if f.type == "compartment":
            return False, self._compartment(f)
        if f.type == "token" and f.modifier in ("text", "identifier", "of-type"):
            return self._token_special(f)
        if f.type == "reference" and f.modifier == "identifier":
            tok = Filter(f.rtype, f.code + ":identifier", "token", None, f.values)
            return self._filter(tok)
        table = _TABLES[f.type]
        build: Callable[[str], exp.Expr] = getattr(self, "_" + f.type)
        if f.type == "token" and f.modifier in ("in", "not-in", "above", "below"):
            pairs = expand_token(self.terminology, f.code, f.modifier, f.values)
            conds = [self._token_pair(s, c) for s, c in pairs]
            q = self._index(table, f.rtype, f.code).where(_any(conds), copy=False)
            return f.modifier == "not-in", q
        if f.type == "reference" and len(f.values) > 1:
            conds = self._reference_values(f.values, f.targets)
        elif f.type == "reference" and f.targets:
            conds = [self._reference(v, f.targets) for v in f.values]
        elif f.type in ("string", "uri"):
            conds = [getattr(self, "_" + f.type)(v, f.modifier) for v in f.values]
        elif f.type == "token" and f.modifier is None and len(f.values) > 1:
            conds = self._token_values(f.values)
        else:
            conds = [build(v) for v in f.values]
        # a plain token probed per candidate: by (resource_type, resource_id, param), the
        # owner index, with system and value tested on its rows; kept from the indexes,
        # they would tempt SQLite into (resource_type, param, value, system), every row
        # of the code across the store (_has: 11.4 -> 6.8 ms on the million)
        owner = self._probe and f.type == "token" and f.modifier is None
        if owner:
            conds = [_values_unindexed(c) for c in conds]
        q = self._index(table, f.rtype, f.code, keep_param=owner).where(_any(conds), copy=False)
        return f.type == "token" and f.modifier == "not", q

    def _text(self, f: Filter) -> exp.Select:
        """``_text``/``_content`` through the dialect's full-text index (every word of a
        value a word prefix; values OR-ed): see :mod:`cmio.indexing.text`."""
        alternatives = [w for w in (query_words(v) for v in f.values) if w]
        probe = self._probe
        q = self._index("text_index", f.rtype, f.code)
        if not alternatives:
            return q.where(exp.false(), copy=False)
        if self.dialect == "sqlite":
            if not probe:  # driven by the FTS matches, rows by primary key (``doc``)
                q = exp.select(_col("resource_id"), copy=False).from_(
                    table_as("text_index", "x"), copy=False
                )
                if f.rtype is None:
                    q = q.select(_col("resource_type"), append=False, copy=False).select(
                        _col("resource_id"), copy=False
                    )
                else:
                    q = q.where(
                        eq(unindexed(_col("resource_type"), self.p), self.p(f.rtype)), copy=False
                    )
                q = q.where(eq(unindexed(_col("param"), self.p), self.p(f.code)), copy=False)
            match = " OR ".join(
                "(" + " AND ".join(f'"{w}"*' for w in words) + ")" for words in alternatives
            )
            docs = (
                exp.select(exp.column("rowid", "f"), copy=False)
                .from_(table_as("text_fts", "f"), copy=False)
                .where(eq(exp.column("text_fts", "f"), self.p(match)), copy=False)
            )
            cond: exp.Expr = exp.In(this=_col("doc"), query=exp.Subquery(this=docs))
        else:
            tsquery = " | ".join(
                "(" + " & ".join(f"{w}:*" for w in words) + ")" for words in alternatives
            )
            cond = exp.condition(
                f"to_tsvector('{TS_CONFIG}', x.body) @@ to_tsquery('{TS_CONFIG}', :q)",
                dialect="postgres",
            ).transform(
                lambda n: self.p(tsquery) if isinstance(n, exp.Placeholder) else n, copy=False
            )
        return q.where(cond, copy=False)

    def _compartment(self, f: Filter) -> exp.Select:
        """Members of a (non-Patient) compartment: resources whose compartment parameters
        (``f.targets``) reference it, and the focal resource itself for ``{def}``."""
        self._probe = False
        ctype, _, cid = f.values[0].partition("|")
        params = [p for p in f.targets if p != "{def}"]
        refs = (
            exp.select(_col("resource_id"), copy=False)
            .from_(table_as("reference_index", "x"), copy=False)
            .where(eq(_col("resource_type"), self.p(f.rtype or "")), copy=False)
            .where(_any([eq(_col("param"), self.p(p)) for p in params]), copy=False)
            .where(eq(_col("target_type"), self.p(ctype)), copy=False)
            .where(eq(_col("target_id"), self.p(cid)), copy=False)
        )
        if "{def}" not in f.targets or f.rtype != ctype:
            return refs
        own = (
            exp.select(exp.alias_(_col("id"), "resource_id", copy=False), copy=False)
            .from_(table_as("resource", "x"), copy=False)
            .where(eq(_col("type"), self.p(ctype)), copy=False)
        )
        mine: exp.Expr = eq(_col("id"), self.p(cid))
        if params:
            member = exp.In(this=_col("id"), query=exp.Subquery(this=refs))
            mine = exp.or_(mine, member, copy=False)
        return own.where(mine, copy=False)

    def _list(self, f: Filter) -> exp.Select:
        """``_list=id``: the items of those List resources (their ``item`` references;
        https://hl7.org/fhir/R4/search.html#list)."""
        self._probe = False
        q = (
            exp.select(exp.alias_(_col("target_id"), "resource_id", copy=False), copy=False)
            .from_(table_as("reference_index", "x"), copy=False)
            .where(eq(_col("resource_type"), self.p("List")), copy=False)
            .where(eq(_col("param"), self.p("item")), copy=False)
            .where(_any([eq(_col("resource_id"), self.p(v)) for v in f.values]), copy=False)
        )
        if f.rtype is not None:
            return q.where(eq(_col("target_type"), self.p(f.rtype)), copy=False)
        return q.select(
            exp.alias_(_col("target_type"), "resource_type", copy=False), append=False, copy=False
        ).select(exp.alias_(_col("target_id"), "resource_id", copy=False), copy=False)

    def _composite(self, f: Filter) -> exp.Select:
        """Components of the same item (https://hl7.org/fhir/R4/search.html#composite)."""
        from cmio.indexing.composite import composite_param

        first = composite_param(f.code, 0)
        q = exp.select(_col("resource_id")).from_(
            table_as(_TABLES[f.components[0]], "x"), copy=False
        )
        if f.rtype is not None:
            q = q.where(eq(_col("resource_type"), self.p(f.rtype)), copy=False)
        q = q.where(
            exp.and_(_col("param") >= self.p(first), _col("param") < self.p(sv.increment(first))),
            copy=False,
        )
        self._probe = False
        alternatives: list[exp.Expr] = []
        for value in f.values:
            parts = value.split("$")
            conds = [self._component(f.components[0], parts[0], "x")]
            item = exp.Substring(this=_col("param"), start=exp.Literal.number(len(first) + 1))
            for k in range(1, len(parts)):
                alias = f"c{k}"
                probe = (
                    exp.select(exp.Literal.number(1))
                    .from_(table_as(_TABLES[f.components[k]], alias))
                    .where(eq(exp.column("resource_type", alias), _col("resource_type")))
                    .where(eq(exp.column("resource_id", alias), _col("resource_id")))
                    .where(
                        eq(
                            exp.column("param", alias),
                            exp.DPipe(
                                this=self.p(composite_param(f.code, k)), expression=item.copy()
                            ),
                        )
                    )
                    .where(self._component(f.components[k], parts[k], alias))
                )
                conds.append(exp.Exists(this=probe))
            alternatives.append(exp.and_(*conds))
        return q.where(_any(alternatives), copy=False)

    def _component(self, ptype: str, value: str, alias: str) -> exp.Expr:
        """One component's condition, on the index table aliased ``alias``."""
        build: Callable[[str], exp.Expr] = getattr(self, "_" + ptype)
        cond = build(value)
        if alias == "x":
            return cond
        return cond.transform(
            lambda n: (
                exp.column(n.name, alias) if isinstance(n, exp.Column) and n.table == "x" else n
            )
        )

    def _token_special(self, f: Filter) -> tuple[bool, exp.Select]:
        if f.modifier == "text":
            q = self._index("string_index", f.rtype, f.code + ":text")
            return False, q.where(_any([self._string(v) for v in f.values]), copy=False)
        if f.modifier == "identifier":
            q = self._index("token_index", f.rtype, f.code + ":identifier")
            return False, q.where(_any([self._token(v) for v in f.values]), copy=False)
        conds: list[exp.Expr] = []
        for value in f.values:  # of-type: system|code|value
            parts = value.split("|")
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise InvalidRequestError(f"{f.code}:of-type needs system|code|value")
            conds.append(self._token_pair(parts[0] or None, f"{parts[1]}|{parts[2]}"))
        return False, self._index("token_index", f.rtype, f.code + ":of-type").where(
            _any(conds), copy=False
        )


def _values_unindexed(cond: exp.Expr) -> exp.Expr:
    """``cond`` with the token columns ``x.system``/``x.value`` as ``(column || '')``: the
    same values, but no index is chosen for them (a literal, so no bind value)."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table == "x" and node.name in _TOKEN_COLUMNS:
            return exp.paren(exp.DPipe(this=node, expression=exp.Literal.string("")), copy=False)
        return node

    return cond.transform(swap, copy=False)


_TOKEN_COLUMNS = frozenset({"system", "value"})
