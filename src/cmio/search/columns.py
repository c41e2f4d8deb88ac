"""``_id``, ``_type`` and ``_lastUpdated``: conditions on the resource table itself.

See https://hl7.org/fhir/R4/search.html#all.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot.expressions as exp

from cmio.search.request import Filter
from cmio.search.values import approximate, parse_date

__all__ = ["resource_condition"]


def resource_condition(node: Filter, param: Callable[[object], exp.Expr], alias: str) -> exp.Expr:
    """The condition for ``_id``/``_type``/``_lastUpdated`` on resource table ``alias``.

    ``_lastUpdated`` is an instant, so it is compared as a point against the
    search value's range (prefixes as in https://hl7.org/fhir/R4/search.html#prefix).
    """
    if node.code == "_id":
        if node.modifier == "missing":
            return exp.true() if node.values[0] == "false" else exp.false()
        return exp.column("id", alias).isin(*(param(v) for v in node.values), copy=False)
    if node.code == "_type":
        return exp.column("type", alias).isin(*(param(v) for v in node.values), copy=False)
    column = exp.column("last_updated", alias)
    conds: list[exp.Expr] = []
    for value in node.values:
        prefix, low, high = parse_date(value)
        if prefix == "ap":
            low, high = approximate(low, high)
        if prefix == "ne":
            conds.append(exp.or_(column < param(low), column >= param(high), copy=False))
            continue
        at_or_after = {"eq": low, "ge": low, "gt": high, "sa": high, "ap": low}
        before = {"eq": high, "le": high, "lt": low, "eb": low, "ap": high}
        parts: list[exp.Expr] = []
        if prefix in at_or_after:
            parts.append(column >= param(at_or_after[prefix]))
        if prefix in before:
            parts.append(column < param(before[prefix]))
        conds.append(exp.and_(*parts, copy=False))
    return exp.or_(*conds, copy=False) if len(conds) > 1 else conds[0]
