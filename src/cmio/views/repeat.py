"""``repeat`` of a ViewDefinition select compiled to SQL: the recursion unrolled.

``repeat: [paths]`` follows the paths from the focus again and again and yields every
node reached, depth first (pre-order)
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#repeat).
A row's lists have no recursion in SQL, so the levels are unrolled to
:data:`REPEAT_DEPTH`: each node carries its key (the branch and position numbers from
the focus down), the levels are concatenated and sorted by key (which is pre-order),
and data deeper than the unrolled levels fails the query with an error instead of
losing rows.
"""

from __future__ import annotations

from sqlglot import exp

from cmio.views.sqlpath import PathCompiler
from cmio.views.sqltypes import Val
from cmio.views.tree import Repeat
from cmio.views.typed import TypedLayoutUnsupported

__all__ = ["REPEAT_DEPTH", "compile_repeat"]

REPEAT_DEPTH = 8
"""How deep ``repeat`` goes in SQL; deeper data aborts the query with an error."""


def compile_repeat(
    paths: PathCompiler, repeat: Repeat, focus: Val, index: exp.Expression, element: str
) -> Val:
    """Every node reachable from ``focus`` through ``repeat.paths``, in pre-order.

    Args:
        paths: the view's path compiler (its dialect, fresh variables, prefetches).
        repeat: the select's ``repeat``.
        focus: the node the select iterates from.
        index: the ``%rowIndex`` of the focus.
        element: the ViewDefinition element named in errors (``select[0].repeat``).

    Returns:
        A list value of the nodes (SQL NULL when no path can reach anything), guarded to
        fail the query when the data goes deeper than :data:`REPEAT_DEPTH` levels.

    Raises:
        TypedLayoutUnsupported: the dialect reads typed columns, which stop at the first
            recursion (only the JSON has the nesting).
    """
    d = paths.d
    if d.typed:
        raise TypedLayoutUnsupported("repeat")

    def level_items(parent: Val) -> list[Val]:
        return [
            paths.compile(p, parent, index, f"{element}[{i}]") for i, p in enumerate(repeat.paths)
        ]

    first = level_items(focus)
    if all(isinstance(v.sql, exp.Null) for v in first):
        return first[0]
    typed = [v.ftype for v in first if v.ftype.index is not None]
    ftype = typed[0] if typed else first[0].ftype

    def keyed(items: list[Val], prefix: exp.Expression | None) -> exp.Expression:
        parts = []
        for j, values in enumerate(items):
            var, pos = paths.fresh("n"), paths.fresh("k")
            step = d.make_list([exp.Literal.number(j), exp.column(pos)])
            key = step if prefix is None else d.concat([prefix, step])
            parts.append(
                d.transform(
                    paths.as_list(values),
                    var,
                    d.struct([("key", key), ("node", exp.column(var))]),
                    pos,
                )
            )
        return d.concat(parts)

    levels = [keyed(first, None)]
    for _ in range(REPEAT_DEPTH):
        var = paths.fresh("up")  # not "p": prefetched columns are _p<n>
        paths.lambda_vars.add(var)
        node = d.field(exp.column(var), "node")
        parent = Val(node, False, ftype, path=(), anchor=node)
        children = keyed(level_items(parent), d.field(exp.column(var), "key"))
        levels.append(d.flatten(d.transform(levels[-1], var, children)))
    deepest = levels.pop()
    ordered = d.sort(d.concat(levels))
    var = paths.fresh("s")
    nodes = d.transform(ordered, var, d.field(exp.column(var), "node"))
    guarded = exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(this=d.length(deepest), expression=exp.Literal.number(0)),
                true=d.fail(f"{element}: deeper than {REPEAT_DEPTH} levels"),
            )
        ],
        default=nodes,
    )
    return Val(guarded, True, ftype)
