"""A read schema with only the nested fields a typed-layout Spark view reads.

Spark prunes nested Parquet columns itself when a query names struct fields
(``spark.sql.optimizer.nestedSchemaPruning.enabled``), but not through the lambda
functions views use for lists: ``transform(code.coding, c -> c.system)`` reads every
field of every ``coding`` (id, system, version, code, display, userSelected). This
module walks the compiled view query (Spark SQL of
:class:`~cmio.views.dialects.spark_typed.TypedSparkDialect`) and collects the paths
it reads, following column aliases, ``coalesce``/``get``/``explode`` and lambda
variables bound to a list's items; any other use of a nested value (a cast, a
comparison, ``to_json``, ``IS NULL``, ``size``) keeps the value's whole subtree.
:func:`prune_schema` then cuts the files' schema down to those paths, and the view
reads the files with it (``spark.read.schema(...)``): the Parquet reader decodes only
those leaf columns. Struct and list nullness come from the definition levels any
one leaf carries, so answers do not change; a path the walk missed fails analysis
and the caller reads the full schema instead. See
https://spark.apache.org/docs/latest/sql-data-sources-parquet.html and
https://parquet.apache.org/docs/file-format/nestedencoding/.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

__all__ = ["file_schema", "prune_schema", "read_paths"]

Path = tuple[str, ...]
_TRANSPARENT_FIRST = ("GET", "ELEMENT_AT")
"""Functions whose value is (an item of) their first argument's value."""


Env = dict[str, set[Path]]


class _Walk:
    """One pass over a query, scope by scope: a SELECT's names are the aliases of the
    subqueries it reads from (a path, or the empty set for a computed value) and its
    lambda variables; a name no scope defines is a column of the source table."""

    def __init__(self) -> None:
        self.used: set[Path] = set()

    def consume(self, paths: set[Path] | None) -> None:
        if paths:
            self.used.update(paths)

    def source(self, node: exp.Expr | None, env: Env) -> Env:
        """The names a FROM/JOIN item defines (a subquery's aliases; a table: none)."""
        if isinstance(node, exp.From | exp.Join | exp.Subquery | exp.Paren):
            return self.source(node.this, env)
        if isinstance(node, exp.Query):
            return self.query(node, env)
        if isinstance(node, exp.Expr):
            self.consume(self.visit(node, env))
        return {}

    def query(self, node: exp.Query, env: Env) -> Env:
        """Visit a SELECT or set operation; return the names it outputs."""
        if isinstance(node, exp.SetOperation):
            out: Env = {}
            for side in (node.this, node.expression):
                for name, paths in self.source(side, env).items():
                    out.setdefault(name, set()).update(paths)
            return out
        if not isinstance(node, exp.Select):
            self.consume(self.visit(node, env))
            return {}
        scope: Env = dict(env)
        for key in ("from_", "from", "joins", "laterals"):
            value = node.args.get(key)
            for item in value if isinstance(value, list) else [value]:
                for name, paths in self.source(item, env).items():
                    scope.setdefault(name, set()).update(paths)
        outputs: Env = {}
        for key, value in node.args.items():
            if key in ("from_", "from", "joins", "laterals"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, exp.Expr):
                    continue
                if key == "expressions" and isinstance(item, exp.Alias):
                    outputs[item.alias.lower()] = self.visit(item.this, scope) or set()
                    continue
                found = self.visit(item, scope)
                if key == "expressions" and isinstance(item, exp.Column):
                    outputs[item.name.lower()] = found or set()
                else:
                    self.consume(found)
        return outputs

    def column(self, node: exp.Column, env: Env) -> set[Path] | None:
        parts = [p.name for p in node.parts]
        head = env.get(parts[0].lower())
        if head is None:
            return {tuple(parts)}
        return {p + tuple(parts[1:]) for p in head} or None

    def visit(self, node: exp.Expr, env: Env) -> set[Path] | None:
        """The paths ``node``'s value is (None: not a nested value of the source);
        every nested value consumed below ``node`` is added to ``used``."""
        if isinstance(node, exp.Query):
            self.query(node, env)
            return None
        if isinstance(node, exp.Column):
            return self.column(node, env)
        if isinstance(node, exp.Identifier):
            return env.get(node.name.lower()) or None
        if isinstance(node, exp.Dot):
            inner = self.visit(node.this, env)
            return None if inner is None else {(*p, node.name) for p in inner}
        if isinstance(node, exp.Paren | exp.Explode | exp.Alias):
            return self.visit(node.this, env)
        if isinstance(node, exp.Coalesce):
            found = [self.visit(n, env) for n in (node.this, *node.expressions)]
            paths: set[Path] = set().union(*(f for f in found if f))
            return paths or None
        if isinstance(node, exp.Bracket) or (
            isinstance(node, exp.Anonymous) and node.name.upper() in _TRANSPARENT_FIRST
        ):
            args = list(node.expressions)
            if isinstance(node, exp.Bracket):
                args.insert(0, node.this)
            for rest in args[1:]:
                self.consume(self.visit(rest, env))
            return self.visit(args[0], env)
        lam, args = _lambda_call(node)
        if lam is not None:
            items = self.visit(args[0], env) or set()
            for rest in args[1:]:
                self.consume(self.visit(rest, env))
            inner_env = dict(env)
            for param in lam.expressions:
                inner_env[param.name.lower()] = items
            self.consume(self.visit(lam.this, inner_env))
            return None
        for key, value in node.args.items():
            if key == "alias" or (isinstance(node, exp.PropertyEQ) and key == "this"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, exp.Expr):
                    self.consume(self.visit(item, env))
        return None


def _lambda_call(node: exp.Expr) -> tuple[exp.Lambda | None, list[exp.Expr]]:
    """A higher-order function call's lambda and its other arguments, the list first:
    ``transform(xs, x -> ...)`` as parsed (``Transform``: ``this`` and a lambda
    ``expression``) or as the compiler builds it (``Anonymous``, the lambda among
    its arguments); ``(None, [])`` for any other node."""
    lam = node.args.get("expression")
    if isinstance(lam, exp.Lambda) and isinstance(node.this, exp.Expr):
        return lam, [node.this]
    if isinstance(node, exp.Anonymous):
        lambdas = [a for a in node.expressions if isinstance(a, exp.Lambda)]
        if len(lambdas) == 1 and node.expressions and node.expressions[0] is not lambdas[0]:
            return lambdas[0], [a for a in node.expressions if a is not lambdas[0]]
    return None, []


def read_paths(query: str | exp.Expr) -> set[Path] | None:
    """The nested paths (field names from the source's top-level columns, list levels
    left out) whose whole value the Spark SQL query reads; None when the text
    does not parse.

    Args:
        query: the compiled query tree (as :class:`~cmio.views.compiler.ViewCompiler`
            builds it), or Spark SQL text with every identifier quoted.

    Names the source does not have (aliases of outer queries, ``explode`` rows) may
    appear too: :func:`prune_schema` ignores them.
    """
    walk = _Walk()
    if isinstance(query, exp.Expr):
        tree = query
    else:
        try:
            tree = sqlglot.parse_one(query, read="spark")
        except sqlglot.errors.SqlglotError:
            return None
    if isinstance(tree, exp.Query):
        for paths in walk.query(tree, {}).values():
            walk.consume(paths)
    else:
        walk.consume(walk.visit(tree, {}))
    return walk.used


def file_schema(path: str) -> StructType | None:
    """The Spark schema of a typed Parquet file, from its footer read in this process.

    Spark infers a Parquet schema with a job that reads the footers on the executors;
    given a schema it reads no footer before the query. None when a column's type has
    no Spark equivalent (Spark's own inference then decides).
    """
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        return from_arrow_schema(pq.read_schema(path), prefer_timestamp_ntz=False)
    except (OSError, ValueError, TypeError, NotImplementedError):
        return None
    except Exception as exc:  # pyspark's own "unsupported type" errors
        if "UNSUPPORTED" in str(exc).upper():
            return None
        raise


def prune_schema(schema: StructType, paths: Iterable[Path]) -> StructType | None:
    """``schema`` cut down to ``paths`` (matched case-insensitively, as Spark resolves
    names; through lists to their items), or None when no path names a column."""
    from pyspark.sql.types import StructType

    tree: dict[str, object] = {}
    for path in paths:
        node = tree
        for depth, key in enumerate(path):
            lowered = key.lower()
            if depth == len(path) - 1:
                node[lowered] = None  # whole subtree
                break
            child = node.setdefault(lowered, {})
            if child is None:  # already whole
                break
            assert isinstance(child, dict)
            node = child
    pruned = _prune(schema, tree)
    return pruned if isinstance(pruned, StructType) and pruned.fields else None


def _prune(kind: DataType, tree: dict[str, object] | None) -> DataType | None:
    from pyspark.sql.types import ArrayType, StructField, StructType

    if tree is None:
        return kind
    if isinstance(kind, ArrayType):
        element = _prune(kind.elementType, tree)
        return None if element is None else ArrayType(element, kind.containsNull)
    if not isinstance(kind, StructType):
        return kind  # a leaf named with a further key: the leaf itself
    fields = []
    for field in kind.fields:
        key = field.name.lower()
        if key not in tree:
            continue
        sub = tree[key]
        child = _prune(field.dataType, sub if isinstance(sub, dict) else None)
        if child is not None:
            fields.append(StructField(field.name, child, field.nullable, field.metadata))
    return StructType(fields) if fields else None
