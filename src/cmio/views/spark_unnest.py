"""Explode a forEach's items, not a list of row structs built for them (Spark plans).

The compiler (:mod:`cmio.views.compiler`) turns a view's forEach into a list of row
structs, ``transform(items, (f, i) -> named_struct('a', <a of f>, ...))``, computed once
per resource below the ``explode`` (``project_before_unnest``). On Spark that list is
built twice: Spark infers ``size(list) > 0`` from the ``explode`` (its
``InferFiltersFromGenerate`` rule) and pushes that filter below the projection, where
the ``transform`` is evaluated again, and each item's struct is copied once more as
the ``explode`` emits it. When the forEach is the view's only list of rows and each
row is one item's fields (no position used), :func:`explode_items` rewrites the query
to explode the items themselves and compute the item's columns after the ``explode``:
the same expressions, once per row, and the inferred filter is a cheap ``size(items)``.
Same rows, in the same order. See
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#processing-algorithm
and https://spark.apache.org/docs/latest/api/sql/index.html#explode.
"""

from __future__ import annotations

from sqlglot import exp

__all__ = ["explode_items"]

_ROW = "_row"
_LIST = "_rowlist"


def _call(node: exp.Expression | None, name: str) -> exp.Anonymous | None:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == name:
        return node
    return None


def _from(select: exp.Expression | None) -> exp.Select | None:
    """The SELECT a query reads from (``FROM (<select>) AS alias``), if that is its shape."""
    if not isinstance(select, exp.Select):
        return None
    source = select.args.get("from_") or select.args.get("from")
    sub = source.this if isinstance(source, exp.From) else None
    inner = sub.this if isinstance(sub, exp.Subquery) else None
    return inner if isinstance(inner, exp.Select) else None


def explode_items(query: exp.Select) -> exp.Select:
    """``query`` with its forEach's items exploded directly, when it has the simple shape.

    The shape: ``SELECT <cols> FROM (SELECT <singles>, explode(_rowlist) AS _row FROM
    (SELECT ..., transform(items, (f[, i]) -> named_struct(...)) AS _rowlist ...))``
    where the struct reads only ``f`` (not ``i``, not the resource). Any other query is
    returned unchanged.

    Args:
        query: a compiled view query (:meth:`cmio.views.compiler.ViewCompiler.compile`
            with a Spark dialect); not modified.

    Returns:
        The rewritten copy, or ``query`` itself.
    """
    middle = _from(query)
    before = _from(middle)
    if middle is None or before is None:
        return query
    explodes = [
        e
        for e in middle.expressions
        if isinstance(e, exp.Alias)
        and e.alias == _ROW
        and (call := _call(e.this, "explode")) is not None
        and isinstance(call.expressions[0], exp.Column)
        and call.expressions[0].name == _LIST
    ]
    lists = [e for e in before.expressions if isinstance(e, exp.Alias) and e.alias == _LIST]
    if len(explodes) != 1 or len(lists) != 1:
        return query
    transform = _call(lists[0].this, "transform")
    if transform is None or len(transform.expressions) != 2:
        return query
    items, function = transform.expressions
    if not isinstance(function, exp.Lambda):
        return query
    struct = _call(function.this, "named_struct")
    params = [p.name for p in function.expressions]
    if struct is None or not params or len(struct.expressions) % 2:
        return query
    bound = {params[0]} | {p.name for f in struct.find_all(exp.Lambda) for p in f.expressions}
    if any(c.table or c.name not in bound for c in struct.find_all(exp.Column)):
        return query  # reads the position or the resource's columns: not one item's fields
    fields: dict[str, exp.Expression] = {}
    for key, value in zip(struct.expressions[::2], struct.expressions[1::2], strict=True):
        if not isinstance(key, exp.Literal) or not key.is_string:
            return query
        fields[key.this] = value
    reads = [
        e
        for e in query.expressions
        if isinstance(e, exp.Alias)
        and isinstance(e.this, exp.Dot)
        and isinstance(e.this.this, exp.Column)
        and e.this.this.name == _ROW
    ]
    if any(e.this.expression.name not in fields for e in reads):
        return query
    names = [c.name for e in query.expressions for c in e.find_all(exp.Column)]
    if names.count(_ROW) != len(reads) or params[0] in names:
        return query  # the row struct is read some other way, or the name is taken
    out = query.copy()
    new_middle = _from(out)
    new_before = _from(new_middle)
    assert new_middle is not None and new_before is not None
    for alias in new_before.expressions:
        if isinstance(alias, exp.Alias) and alias.alias == _LIST:
            alias.set("this", items.copy())
    for alias in new_middle.expressions:
        if isinstance(alias, exp.Alias) and alias.alias == _ROW:
            alias.set("alias", exp.to_identifier(params[0]))
    for alias in out.expressions:
        dot = alias.this if isinstance(alias, exp.Alias) else None
        if isinstance(dot, exp.Dot) and isinstance(dot.this, exp.Column) and dot.this.name == _ROW:
            alias.set("this", fields[dot.expression.name].copy())
    return out
