"""Existence, filtering, subsetting and combining functions.

See http://hl7.org/fhirpath/N1/#existence, #filtering-and-projection,
#subsetting and #combining.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.functions.base import Fn, FunctionSpec, single_int, spec
from cmio.fhirpath.navigation import children_of
from cmio.fhirpath.operators import BINARY, contains_item, distinct
from cmio.fhirpath.values import as_bool, compare, prim

__all__ = ["FUNCTIONS"]


def _each(ctx: Context, items: list[Any], criteria: Fn) -> list[tuple[Any, list[Any]]]:
    saved = ctx.index
    out = []
    try:
        for i, item in enumerate(items):
            ctx.index = i
            out.append((item, criteria(ctx, [item])))
    finally:
        ctx.index = saved
    return out


def _where(ctx: Context, items: list[Any], criteria: Fn) -> list[Any]:
    return [
        item for item, result in _each(ctx, items, criteria) if as_bool(result, "where() criteria")
    ]


def _select(ctx: Context, items: list[Any], projection: Fn) -> list[Any]:
    out: list[Any] = []
    for _, result in _each(ctx, items, projection):
        out.extend(result)
    return out


def _repeat(ctx: Context, items: list[Any], projection: Fn) -> list[Any]:
    out: list[Any] = []
    queue = list(items)
    while queue:
        found: list[Any] = []
        for _, result in _each(ctx, queue, projection):
            for item in result:
                if not contains_item(out, item):
                    out.append(item)
                    found.append(item)
        queue = found
    return out


def _exists(ctx: Context, items: list[Any], criteria: Fn | None = None) -> list[Any]:
    if criteria is not None:
        items = _where(ctx, items, criteria)
    return [bool(items)]


def _all(ctx: Context, items: list[Any], criteria: Fn) -> list[Any]:
    return [
        all(as_bool(result, "all() criteria") is True for _, result in _each(ctx, items, criteria))
    ]


def _booleans(items: list[Any], name: str) -> list[bool]:
    values = [prim(item) for item in items]
    if any(type(v) is not bool for v in values):
        raise FhirPathError(f"{name}() needs Boolean items")
    return values


def _aggregate(
    ctx: Context, items: list[Any], aggregator: Fn, init: list[Any] | None = None
) -> list[Any]:
    saved_total, saved_index = ctx.total, ctx.index
    total = init or []
    try:
        for i, item in enumerate(items):
            ctx.total, ctx.index = total, i
            total = aggregator(ctx, [item])
    finally:
        ctx.total, ctx.index = saved_total, saved_index
    return total


def _single(ctx: Context, items: list[Any]) -> list[Any]:
    if len(items) > 1:
        raise FhirPathError(f"single(): the input has {len(items)} items")
    return items


def _skip(ctx: Context, items: list[Any], count: list[Any]) -> list[Any]:
    n = single_int(count, "skip() argument")
    return items if n is None or n <= 0 else items[n:]


def _take(ctx: Context, items: list[Any], count: list[Any]) -> list[Any]:
    n = single_int(count, "take() argument")
    return [] if n is None or n <= 0 else items[:n]


def _intersect(ctx: Context, items: list[Any], other: list[Any]) -> list[Any]:
    return [item for item in distinct(items) if contains_item(other, item)]


def _exclude(ctx: Context, items: list[Any], other: list[Any]) -> list[Any]:
    return [item for item in items if not contains_item(other, item)]


def _descendants(ctx: Context, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    queue = items
    while queue:
        level: list[Any] = []
        for item in queue:
            level.extend(children_of(ctx, item))
        out.extend(level)
        queue = level
    return out


def _children(ctx: Context, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        out.extend(children_of(ctx, item))
    return out


def _not(ctx: Context, items: list[Any]) -> list[Any]:
    value = as_bool(items, "not() input")
    return [] if value is None else [not value]


def _trace(
    ctx: Context, items: list[Any], name: list[Any], projection: Fn | None = None
) -> list[Any]:
    shown = _select(ctx, items, projection) if projection is not None else items
    label = prim(name[0]) if name else ""
    ctx.logger.debug("trace %s: %r", label, [prim(item) for item in shown])
    return items


def _extreme(name: str, sign: int) -> Callable[[Context, list[Any]], list[Any]]:
    def impl(ctx: Context, items: list[Any]) -> list[Any]:
        best: Any = None
        for item in items:
            if best is None:
                best = item
                continue
            order = compare(item, best)
            if order is None:
                return []
            if order * sign > 0:
                best = item
        return [] if best is None else [best]

    impl.__name__ = name
    return impl


def _sum(ctx: Context, items: list[Any]) -> list[Any]:
    total: list[Any] = items[:1]
    for item in items[1:]:
        total = BINARY["+"](total, [item])
    return total


def _avg(ctx: Context, items: list[Any]) -> list[Any]:
    return BINARY["/"](_sum(ctx, items), [len(items)]) if items else []


def _compiled_specially(ctx: Context, items: list[Any], *args: Any) -> list[Any]:
    raise AssertionError("iif() and sort() are compiled by the compiler")


FUNCTIONS: dict[str, FunctionSpec] = {
    "iif": spec(_compiled_specially, 2, 3),
    "sort": spec(_compiled_specially, 0, 16),
    "empty": spec(lambda ctx, items: [not items]),
    "exists": spec(_exists, 0, 1, lazy=(0,)),
    "all": spec(_all, 1, lazy=(0,)),
    "allTrue": spec(lambda ctx, items: [all(_booleans(items, "allTrue"))]),
    "anyTrue": spec(lambda ctx, items: [any(_booleans(items, "anyTrue"))]),
    "allFalse": spec(lambda ctx, items: [not any(_booleans(items, "allFalse"))]),
    "anyFalse": spec(lambda ctx, items: [not all(_booleans(items, "anyFalse"))]),
    "subsetOf": spec(lambda ctx, items, other: [all(contains_item(other, i) for i in items)], 1),
    "supersetOf": spec(lambda ctx, items, other: [all(contains_item(items, i) for i in other)], 1),
    "count": spec(lambda ctx, items: [len(items)]),
    "distinct": spec(lambda ctx, items: distinct(items)),
    "isDistinct": spec(lambda ctx, items: [len(distinct(items)) == len(items)]),
    "where": spec(_where, 1, lazy=(0,)),
    "select": spec(_select, 1, lazy=(0,)),
    "repeat": spec(_repeat, 1, lazy=(0,)),
    "aggregate": spec(_aggregate, 1, 2, lazy=(0,)),
    "single": spec(_single),
    "first": spec(lambda ctx, items: items[:1]),
    "last": spec(lambda ctx, items: items[-1:]),
    "tail": spec(lambda ctx, items: items[1:]),
    "skip": spec(_skip, 1),
    "take": spec(_take, 1),
    "intersect": spec(_intersect, 1),
    "exclude": spec(_exclude, 1),
    "union": spec(lambda ctx, items, other: distinct(items + other), 1),
    "combine": spec(lambda ctx, items, other: items + other, 1),
    "children": spec(_children),
    "descendants": spec(_descendants),
    "not": spec(_not),
    "trace": spec(_trace, 1, 2, lazy=(1,)),
    "sum": spec(_sum),
    "min": spec(_extreme("min", -1)),
    "max": spec(_extreme("max", 1)),
    "avg": spec(_avg),
}
