"""FHIRPath to SQL: the subset of FHIRPath used in views, typed by the R4 model.

Compiles paths, ``where()``, ``exists()``, ``empty()``, ``not()``, ``first()``,
``count()``, ``join()``, ``ofType()``, ``extension(url)``, ``getResourceKey()``,
``getReferenceKey([type])``, indexers, literals, constants, ``%rowIndex`` and the
comparison, boolean, arithmetic and string operators to sqlglot expressions over
resource JSON (through a :class:`~cmio.views.dialects.base.Dialect`). Anything
else raises :class:`UnsupportedExpression` naming the expression; the in-memory
evaluator still runs it. Spec: https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#fhirpath-functionality
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlglot import exp

from cmio.fhirpath import parse
from cmio.fhirpath.syntax import (
    Binary,
    EnvVar,
    Expr,
    Function,
    Indexer,
    Literal,
    Member,
    Unary,
    Variable,
)
from cmio.model import Model
from cmio.model.types import K_BACKBONE, K_COMPLEX, K_RESOURCE, K_SHADOW, JsonProperty
from cmio.views.columns import kind_of
from cmio.views.dialects.base import Dialect, SqlKind
from cmio.views.parse import ENVIRONMENT, ViewDefinitionError
from cmio.views.sqlfunctions import FunctionCompiler
from cmio.views.sqltypes import SYSTEM_KINDS, UNKNOWN, FType, Val
from cmio.views.tree import Constant
from cmio.views.typed import TypedLayoutUnsupported

__all__ = ["FType", "PathCompiler", "UnsupportedExpression", "Val"]

_COMPARE: dict[str, type[exp.Expression]] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
_ARITHMETIC: dict[str, type[exp.Expression]] = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}


class UnsupportedExpression(ViewDefinitionError):
    """A FHIRPath construct the SQL engines do not compile (the in-memory evaluator may)."""


class PathCompiler:
    """Compiles the FHIRPath expressions of one view into one query.

    Args:
        dialect: the target engine.
        model: the FHIR model (types and cardinalities).
        constants: the view's constants.
        prefetch: called with a property path from the resource and ``True`` for its
            text (``False``: its JSON); returns the expression holding it (the
            compiler's pre-projection, extracted once per resource).
        membership: called with a list of ``system|code`` keys (an expression over the
            pre-projection) and a value set URL; returns the boolean column holding
            whether any key is in the value set (None: ``memberOf()`` is unsupported).
    """

    def __init__(
        self,
        dialect: Dialect,
        model: Model,
        constants: Mapping[str, Constant],
        prefetch: Callable[[tuple[str, ...], bool], exp.Expression],
        membership: Callable[[exp.Expression, str], exp.Expression] | None = None,
    ) -> None:
        self.d = dialect
        self.model = model
        self.constants = constants
        self.prefetch = prefetch
        self.membership = membership
        self.lambda_vars: set[str] = set()
        self._counter = 0
        self._members: dict[int, dict[str, list[tuple[str, JsonProperty]]]] = {}
        self.functions = FunctionCompiler(self)

    # -- helpers ------------------------------------------------------------------------
    def fresh(self, stem: str = "v") -> str:
        """A new lambda variable name."""
        self._counter += 1
        return f"_{stem}{self._counter}"

    def type_of(self, name: str) -> FType:
        """The static type of a FHIR type name."""
        typedef = self.model.types.get(name)
        return FType(name, typedef.json_index if typedef is not None else None)

    def _child_type(self, prop: JsonProperty) -> FType:
        if prop.kind == K_BACKBONE:
            return FType("BackboneElement", prop.members)
        if prop.kind == K_RESOURCE:
            return UNKNOWN
        if prop.kind == K_COMPLEX:
            return self.type_of(prop.type_code)
        return FType(prop.type_code)

    def props(self, ftype: FType, name: str) -> list[tuple[str, JsonProperty]]:
        index = ftype.index
        if index is None:
            return []
        members = self._members.get(id(index))
        if members is None:
            members = {}
            for json_name, prop in index.items():
                if prop.kind != K_SHADOW:
                    members.setdefault(prop.element.name, []).append((json_name, prop))
            self._members[id(index)] = members
        return members.get(name, [])

    @staticmethod
    def json_kind(value: Val) -> SqlKind | None:
        """The scalar kind of a value's items (None: complex JSON)."""
        if value.kind is not None:
            return value.kind
        code = value.ftype.code
        if code is None or value.ftype.index is not None:
            return None
        return SYSTEM_KINDS.get(code) or kind_of(code)

    def typed(self, value: Val, kind: SqlKind | None = None) -> exp.Expression:
        """One item as a typed SQL scalar of ``kind`` (default: its own)."""
        own = self.json_kind(value)
        want: SqlKind = kind or own or "string"
        if self.d.typed and value.kind is None and own is None and not _is_null(value):
            # an object's (or an item of unknown type's) JSON text: only the JSON has it
            raise TypedLayoutUnsupported(f"the JSON text of {value.ftype.code or 'a value'}")
        if value.kind is not None:
            return value.sql if value.kind == want else self.d.cast(value.sql, want)
        if value.path is not None and (value.path or value.anchor is not None):
            text = self.at(value.anchor, value.path, True)
            return text if want == "string" else self.d.parse_text(text, want)
        return self.d.json_scalar(value.sql, want)

    def at(
        self, anchor: exp.Expression | None, path: tuple[str, ...], text: bool
    ) -> exp.Expression:
        if anchor is None:
            return self.prefetch(path, text)
        return self.d.json_path(anchor, path, text)

    def rooted(self, value: Val) -> bool:
        """Whether ``value`` reads only the resource (no item of a forEach, repeat or where())."""
        return not any(c.name in self.lambda_vars for c in value.sql.find_all(exp.Column))

    def item(self, value: Val, var: str) -> Val:
        """The Val of one item of ``value`` bound to the lambda variable ``var``."""
        self.lambda_vars.add(var)
        column = exp.column(var)
        if value.kind is None:
            return replace(value, sql=column, many=False, path=(), anchor=column)
        return replace(value, sql=column, many=False, path=None, anchor=None)

    def single(self, value: Val, what: str) -> Val:
        """A value as at most one item; several items abort the query naming ``what``."""
        if not value.many:
            return value
        first = self.d.element(value.sql, exp.Literal.number(0))
        length = self.d.length(value.sql)
        guarded = exp.Case(
            ifs=[
                exp.If(
                    this=exp.GT(this=length, expression=exp.Literal.number(1)),
                    true=self.d.fail(f"{what} returned several values"),
                )
            ],
            default=first,
        )
        return replace(value, sql=guarded, many=False, path=None)

    def as_list(self, value: Val) -> exp.Expression:
        """The items as a list expression."""
        if value.many:
            return value.sql
        var = self.fresh()
        return self.d.filter(
            self.d.make_list([value.sql]),
            var,
            exp.Not(this=exp.Is(this=exp.column(var), expression=exp.Null())),
        )

    def map_items(self, value: Val, fn: Callable[[Val], Val]) -> Val:
        """Apply a one-item function to every item (dropping empty results)."""
        if not value.many:
            return fn(value)
        var = self.fresh()
        out = fn(self.item(value, var))
        mapped = self.d.transform(value.sql, var, out.sql)
        keep = self.fresh()
        sql = self.d.filter(
            mapped, keep, exp.Not(this=exp.Is(this=exp.column(keep), expression=exp.Null()))
        )
        return replace(out, sql=sql, many=True)

    # -- entry points -------------------------------------------------------------------
    def compile(self, path: str, focus: Val, row_index: exp.Expression, element: str) -> Val:
        """Compile ``path`` evaluated on ``focus``.

        Raises:
            UnsupportedExpression: for constructs outside the SQL subset.
        """
        try:
            tree = parse(path)
        except Exception as exc:  # validated earlier; keep the element in the message
            raise ViewDefinitionError(f"invalid FHIRPath {path!r}: {exc}", element) from exc
        self.text, self._element, self._index = path, element, row_index
        return self.expr(tree, focus)

    def unsupported(self, what: str) -> UnsupportedExpression:
        return UnsupportedExpression(
            f"{what} in {self.text!r} is not supported by the SQL engines "
            "(the in-memory engine runs it)",
            self._element,
        )

    # -- expressions --------------------------------------------------------------------
    def expr(self, node: Expr, focus: Val) -> Val:
        if isinstance(node, Member):
            base = focus if node.target is None else self.expr(node.target, focus)
            if (
                node.target is None
                and node.name == focus.ftype.code
                and focus.path == ()
                and focus.anchor is None
            ):
                return focus
            return self.member(base, node.name)
        if isinstance(node, Function):
            return self.functions.compile(node, focus)
        if isinstance(node, Literal):
            return self._literal(node.value)
        if isinstance(node, Variable):
            if node.name == "this":
                return focus
            raise self.unsupported(f"${node.name}")
        if isinstance(node, EnvVar):
            return self._env(node.name, focus)
        if isinstance(node, Binary):
            return self._binary(node, focus)
        if isinstance(node, Unary):
            operand = self.single(self.expr(node.operand, focus), self.text)
            kind = self.json_kind(operand) or "decimal"
            sql = self.typed(operand, kind)
            return Val(exp.Neg(this=sql) if node.op == "-" else sql, False, operand.ftype, kind)
        if isinstance(node, Indexer):
            base = self.expr(node.target, focus)
            index = self.typed(self.single(self.expr(node.index, focus), self.text), "integer")
            return replace(
                base, sql=self.d.element(self.as_list(base), index), many=False, path=None
            )
        raise self.unsupported(type(node).__name__)

    def member(self, base: Val, name: str, json_name: str | None = None) -> Val:
        props = self.props(base.ftype, name)
        if json_name is not None:
            props = [p for p in props if p[0] == json_name]
        if isinstance(base.sql, exp.Null):
            return Val(exp.Null(), False, UNKNOWN)
        if base.kind is not None or base.ftype.index is None:
            raise self.unsupported(
                f"navigation to {name!r} on a value of unknown or primitive type"
            )
        if not props:
            return Val(exp.Null(), False, UNKNOWN)
        if len(props) > 1:
            sqls = [self.member(base, name, key).sql for key, _ in props]
            if base.many:
                return Val(self.d.concat(sqls), True, UNKNOWN)
            return Val(exp.Coalesce(this=sqls[0], expressions=sqls[1:]), False, UNKNOWN)
        key, prop = props[0]
        child = self._child_type(prop)
        if base.path is not None and not base.many:
            path = (*base.path, key)
            # An object's or array's text is its JSON: from the resource, fetch it with the
            # texts (one parse of the document); a scalar's JSON keeps its quotes.
            container = prop.repeats or child.index is not None or prop.kind == K_RESOURCE
            # (typed columns: a container is itself, never text)
            text = container and base.anchor is None and not self.d.typed
            holder = self.at(base.anchor, path, text)
            if prop.repeats:
                return Val(self.d.json_array_items(holder), True, child)
            return Val(holder, False, child, path=path, anchor=base.anchor)
        if not base.many:
            if prop.repeats:
                return Val(self.d.json_children(base.sql, key), True, child)
            return Val(self.d.json_child(base.sql, key), False, child)
        var = self.fresh()
        if prop.repeats:
            inner = self.d.json_children(exp.column(var), key)
            return Val(self.d.flatten(self.d.transform(base.sql, var, inner)), True, child)
        return self.map_items(
            base, lambda item: Val(self.d.json_child(item.sql, key), False, child)
        )

    def _literal(self, value: Any) -> Val:
        if value is None:
            return Val(exp.Null(), False, UNKNOWN, "string")
        if isinstance(value, bool):
            return Val(exp.true() if value else exp.false(), False, FType("boolean"), "boolean")
        if isinstance(value, int):
            return Val(exp.Literal.number(value), False, FType("integer"), "integer")
        if isinstance(value, Decimal):
            return Val(
                self.d.cast(exp.Literal.number(str(value)), "decimal"),
                False,
                FType("decimal"),
                "decimal",
            )
        if isinstance(value, str):
            return Val(exp.Literal.string(value), False, FType("string"), "string")
        text = str(value)
        if text.startswith("@"):
            return Val(exp.Literal.string(text.lstrip("@T")), False, FType("string"), "string")
        raise self.unsupported(f"the literal {text}")

    def _env(self, name: str, focus: Val) -> Val:
        if name == "rowIndex":
            return Val(self._index, False, FType("integer"), "integer")
        constant = self.constants.get(name)
        if constant is None and name in ENVIRONMENT:
            raise self.unsupported(f"the environment variable %{name}")
        if constant is None:
            raise ViewDefinitionError(f"undefined constant %{name}", self._element)
        kind = kind_of(constant.type)
        value = constant.value
        if kind == "boolean":
            sql: exp.Expression = exp.true() if value else exp.false()
        elif kind == "integer":
            sql = exp.Literal.number(int(value))
        elif kind == "decimal":
            sql = self.d.cast(exp.Literal.number(str(value)), "decimal")
        else:
            sql = exp.Literal.string(str(value))
        return Val(sql, False, FType(constant.type), kind)

    def _binary(self, node: Binary, focus: Val) -> Val:
        op = node.op
        left = self.single(self.expr(node.left, focus), self.text)
        right = self.single(self.expr(node.right, focus), self.text)
        if op in ("and", "or", "xor", "implies"):
            a, b = self.typed(left, "boolean"), self.typed(right, "boolean")
            if op == "and":
                sql: exp.Expression = exp.And(this=a, expression=b)
            elif op == "or":
                sql = exp.Or(this=exp.Paren(this=a), expression=exp.Paren(this=b))
            elif op == "implies":
                sql = exp.Or(this=exp.Not(this=a), expression=exp.Paren(this=b))
            else:
                sql = exp.NEQ(this=a, expression=b)
            return Val(exp.Paren(this=sql), False, FType("boolean"), "boolean")
        lk, rk = self.json_kind(left), self.json_kind(right)
        if op in _COMPARE:
            kind = self._common(lk, rk)
            sql = _COMPARE[op](this=self.typed(left, kind), expression=self.typed(right, kind))
            return Val(exp.Paren(this=sql), False, FType("boolean"), "boolean")
        if op == "&":
            parts = [
                exp.Coalesce(this=self.typed(v, "string"), expressions=[exp.Literal.string("")])
                for v in (left, right)
            ]
            return Val(self.d.concat_strings(*parts), False, FType("string"), "string")
        if op == "+" and lk == "string" and rk == "string":
            sql = self.d.concat_strings(self.typed(left), self.typed(right))
            return Val(sql, False, FType("string"), "string")
        if op in _ARITHMETIC or op == "/":
            kind = "decimal" if op == "/" else self._common(lk, rk)
            if kind not in ("integer", "decimal"):
                raise self.unsupported(f"the operator {op} on {lk}/{rk}")
            a, b = self.typed(left, kind), self.typed(right, kind)
            if op == "/":
                sql = self.d.cast(self.d.divide(a, b), "decimal")
            else:
                sql = self.d.cast(_ARITHMETIC[op](this=a, expression=b), kind)
            return Val(sql, False, FType(kind), kind)
        raise self.unsupported(f"the operator {op}")

    @staticmethod
    def _common(left: SqlKind | None, right: SqlKind | None) -> SqlKind:
        if {left, right} == {"integer", "decimal"}:
            return "decimal"
        return left or right or "string"


def _is_null(value: Val) -> bool:
    return isinstance(value.sql, exp.Null)
