"""Value conditions of search: one token, string, reference, date, number, quantity or uri
value as a sqlglot condition on an index table's columns (alias ``x``), with the bind
values it needs. :class:`cmio.search.sql.SqlBuilder` builds on these.
See https://hl7.org/fhir/R4/search.html#ptypes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import sqlglot.expressions as exp

from cmio.indexing.values import canonical_quantity
from cmio.search import values as sv
from cmio.store.base import InvalidRequestError

__all__ = ["Params", "ValueConditions", "eq", "escape_like", "table_as", "unindexed"]


class Params:
    """Collects bind values as named placeholders ``:p0, :p1, ...``."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> exp.Placeholder:
        self.values.append(value)
        return exp.Placeholder(this=f"p{len(self.values) - 1}")


def _col(name: str, table: str = "x") -> exp.Column:
    return exp.column(name, table)


def eq(this: exp.Expr, other: exp.Expr) -> exp.EQ:
    """``this = other`` from fresh operands: the tree :meth:`sqlglot.exp.Expr.eq` builds
    (binary operands parenthesized), without copying them first (a search builds
    hundreds of these; the copies were a fifth of the compile time)."""
    if not isinstance(this, exp.EQ) and not isinstance(other, exp.EQ):
        this = exp.Paren(this=this) if isinstance(this, exp.Binary) else this
        other = exp.Paren(this=other) if isinstance(other, exp.Binary) else other
    return exp.EQ(this=this, expression=other)


def table_as(name: str, alias: str) -> exp.Table:
    """``name AS alias`` built directly (``exp.to_table`` parses the name with sqlglot's
    parser on every call)."""
    return exp.Table(
        this=exp.Identifier(this=name, quoted=False),
        alias=exp.Identifier(this=alias, quoted=False),
    )


def _any(conds: list[exp.Expr]) -> exp.Expr:
    if not conds:
        return exp.false()
    return exp.or_(*conds, copy=False) if len(conds) > 1 else conds[0]


class ValueConditions:
    """Conditions for single search values (the per-type half of the SQL builder).

    Args:
        params: the statement's bind values.
    """

    def __init__(self, params: Params) -> None:
        self.p = params

    def _token_pair(self, system: str | None, code: str | None) -> exp.Expr:
        conds: list[exp.Expr] = []
        if system == "":
            conds.append(_col("system").is_(exp.null()))
        elif system is not None:
            conds.append(eq(_col("system"), self.p(system)))
        if code is not None:
            conds.append(eq(_col("value"), self.p(code)))
        return exp.and_(*conds, copy=False) if conds else exp.true()

    def _token_values(self, values: tuple[str, ...]) -> list[exp.Expr]:
        """OR-ed token values, the codes of one system as ``system = ? AND value IN (...)``:
        one index probe per system instead of one OR term per value (long OR-ed lists,
        e.g. the patients an authorization grant reaches, stay fast)."""
        by_system: dict[str | None, list[str]] = {}
        conds: list[exp.Expr] = []
        for value in values:
            system, code = sv.split_token(value)
            if code is None or system == "":
                conds.append(self._token_pair(system, code))
            else:
                by_system.setdefault(system, []).append(code)
        for system, codes in by_system.items():
            params = [self.p(c) for c in dict.fromkeys(codes)]
            cond: exp.Expr = (
                _col("value").isin(*params) if len(params) > 1 else eq(_col("value"), params[0])
            )
            if system is not None:
                cond = exp.and_(eq(_col("system"), self.p(system)), cond, copy=False)
            conds.append(cond)
        return conds

    def _token(self, value: str) -> exp.Expr:
        return self._token_pair(*sv.split_token(value))

    def _string(self, value: str, modifier: str | None = None) -> exp.Expr:
        from cmio.indexing.values import normalize

        if modifier == "exact":
            return eq(_col("exact"), self.p(value))
        norm = normalize(value)
        if modifier == "contains":
            like = exp.Like(this=_col("norm"), expression=self.p(f"%{escape_like(norm)}%"))
            return exp.Escape(this=like, expression=exp.Literal.string("\\"))
        if not norm:
            return exp.true()
        return exp.and_(
            _col("norm") >= self.p(norm), _col("norm") < self.p(sv.increment(norm)), copy=False
        )

    def _reference(self, value: str, targets: tuple[str, ...] = ()) -> exp.Expr:
        from cmio.indexing.values import reference_parts

        if "://" in value or value.startswith("urn:"):
            rtype, rid, url = reference_parts(value)
            conds: list[exp.Expr] = [eq(_col("url"), self.p(url))]
            return _any(conds)
        if "/" in value:
            rtype, _, rid = value.partition("/")
            if "/" in rid:
                raise InvalidRequestError(f"invalid reference {value!r}")
            return exp.and_(
                eq(_col("target_type"), self.p(rtype)),
                eq(_col("target_id"), self.p(rid)),
                copy=False,
            )
        cond: exp.Expr = eq(_col("target_id"), self.p(value))
        if len(targets) == 1:
            cond = exp.and_(eq(_col("target_type"), self.p(targets[0])), cond, copy=False)
        return cond

    def _reference_values(
        self, values: tuple[str, ...], targets: tuple[str, ...]
    ) -> list[exp.Expr]:
        """OR-ed references, the ids of one type as ``target_type = ? AND target_id IN
        (...)``: one probe of the lookup index per type instead of OR-ed pairs, which SQLite
        answers by scanning every row of the parameter (``_revinclude`` asks for a page of
        references at once)."""
        by_type: dict[str | None, list[str]] = {}
        conds: list[exp.Expr] = []
        for value in values:
            if "://" in value or value.startswith("urn:"):
                conds.append(self._reference(value, targets))
                continue
            rtype: str | None
            if "/" in value:
                rtype, _, rid = value.partition("/")
                if "/" in rid:
                    raise InvalidRequestError(f"invalid reference {value!r}")
            else:
                rtype, rid = (targets[0] if len(targets) == 1 else None), value
            by_type.setdefault(rtype, []).append(rid)
        for rtype, ids in by_type.items():
            params = [self.p(i) for i in dict.fromkeys(ids)]
            cond: exp.Expr = (
                _col("target_id").isin(*params, copy=False)
                if len(params) > 1
                else eq(_col("target_id"), params[0])
            )
            if rtype is not None:
                cond = exp.and_(eq(_col("target_type"), self.p(rtype)), cond, copy=False)
            conds.append(cond)
        return conds

    def range_condition(
        self,
        prefix: str,
        low: object,
        high: object,
        col_low: exp.Expr,
        col_high: exp.Expr,
    ) -> exp.Expr:
        """A value range ``[col_low, col_high)`` against a search range ``[low, high)``.

        See https://hl7.org/fhir/R4/search.html#prefix.
        """
        lo, hi = self.p(low), self.p(high)
        inside = exp.and_(col_low >= lo, col_high <= hi, copy=False)
        if prefix == "eq":
            return inside
        if prefix == "ne":
            return exp.or_(col_low < self.p(low), col_high > self.p(high), copy=False)
        if prefix == "gt":
            return col_high > hi
        if prefix == "lt":
            return col_low < lo
        # ge/le: the inside branch goes through the same end's index as the other branch
        # (rows from ``lo`` on for ge, up to ``hi`` for le), not the opposite end's (every
        # row before, resp. after, the value), as SQLite otherwise picks
        if prefix == "ge":
            later = exp.and_(col_low >= lo, unindexed(col_high.copy(), self.p) <= hi, copy=False)
            return exp.or_(col_high > self.p(high), later, copy=False)
        if prefix == "le":
            earlier = exp.and_(unindexed(col_low.copy(), self.p) >= lo, col_high <= hi, copy=False)
            return exp.or_(col_low < self.p(low), earlier, copy=False)
        if prefix == "sa":
            return col_low >= hi
        if prefix == "eb":
            return col_high <= lo
        return exp.and_(col_low < hi, col_high > lo, copy=False)  # ap (range already widened)

    def _date(self, value: str) -> exp.Expr:
        prefix, low, high = sv.parse_date(value)
        if prefix == "ap":
            low, high = sv.approximate(low, high)
        return self.range_condition(prefix, low, high, _col("low"), _col("high"))

    def point_condition(self, prefix: str, number: Decimal, column: exp.Expr) -> exp.Expr:
        """A stored number against a search number with its precision (search.html#number)."""
        low, high = _precision(number)
        if prefix == "eq":
            return exp.and_(column >= self.p(low), column < self.p(high), copy=False)
        if prefix == "ne":
            return exp.or_(column < self.p(low), column >= self.p(high), copy=False)
        if prefix == "ap":
            slack = abs(number) / 10 or Decimal(high - low)
            return exp.and_(
                column >= self.p(float(number - slack)),
                column <= self.p(float(number + slack)),
                copy=False,
            )
        ops = {"gt": exp.GT, "sa": exp.GT, "lt": exp.LT, "eb": exp.LT, "ge": exp.GTE, "le": exp.LTE}
        return ops[prefix](this=column, expression=self.p(float(number)))

    def _number(self, value: str) -> exp.Expr:
        prefix, text = sv.split_prefix(value)
        return self.point_condition(prefix, sv.parse_number(text), _col("low"))

    def _quantity(self, value: str) -> exp.Expr:
        q = sv.parse_quantity(value)
        if q.code is not None and q.system in (None, "http://unitsofmeasure.org"):
            canon = canonical_quantity(q.number, q.code)
            if canon is not None:
                cond = self.point_condition(q.prefix, canon[0], _col("canon_low"))
                return exp.and_(eq(_col("canon_code"), self.p(canon[1])), cond, copy=False)
        conds: list[exp.Expr] = [self.point_condition(q.prefix, q.number, _col("low"))]
        if q.system is not None:
            conds.append(eq(_col("system"), self.p(q.system)))
        if q.code is not None:
            conds.append(eq(_col("code"), self.p(q.code)))
        return exp.and_(*conds, copy=False)

    def _uri(self, value: str, modifier: str | None = None) -> exp.Expr:
        if modifier == "below":
            return exp.and_(
                _col("value") >= self.p(value),
                _col("value") < self.p(sv.increment(value)),
                copy=False,
            )
        if modifier == "above":
            return exp.Like(
                this=self.p(value),
                expression=exp.DPipe(this=_col("value"), expression=self.p("%")),
            )
        return eq(_col("value"), self.p(value))


def unindexed(column: exp.Expr, param: Callable[[object], exp.Expr]) -> exp.Expr:
    """``column || ''``: the same value, but SQLite will not pick an index for it.

    Probes and sort keys must go through ``(resource_type, resource_id, param)``
    rather than a lookup index that starts with ``(resource_type, param)`` and
    would scan every row of the parameter (https://www.sqlite.org/optoverview.html).
    """
    return exp.DPipe(this=column, expression=param(""))


def escape_like(text: str) -> str:
    """``text`` as a literal in a LIKE pattern with ``ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _precision(number: Decimal) -> tuple[float, float]:
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(number - half), float(number + half)
