"""Compile a FHIRPath syntax tree into nested Python closures.

Every node becomes a function ``(ctx, focus) -> list`` where ``focus`` is the
collection ``$this`` stands for at that point (the context at the top, the
current item inside ``where()``/``select()``...). Evaluation then runs no AST
walking: member chains are one loop over precomputed names, literals are
constants, and functions are looked up once at compile time
(http://hl7.org/fhirpath/N1/#evaluation-model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.fastpath import chain_nodes, chain_values, narrow_chain, plan_chain
from cmio.fhirpath.fhirtypes import FhirTypes, Node, TypeInfo
from cmio.fhirpath.functions import FUNCTIONS, Fn, FunctionSpec
from cmio.fhirpath.functions.base import single_int
from cmio.fhirpath.navigation import navigate
from cmio.fhirpath.operators import BINARY, logic, negate
from cmio.fhirpath.parser import type_spec_of
from cmio.fhirpath.statictypes import static_type
from cmio.fhirpath.syntax import (
    Binary,
    EnvVar,
    Expr,
    Function,
    Indexer,
    Literal,
    Member,
    TypeOp,
    TypeSpec,
    Unary,
    Variable,
)
from cmio.fhirpath.values import as_bool, compare, prim, quantity_of, single

__all__ = ["SYSTEM_TYPES", "Compiler", "environment_constant"]

SYSTEM_TYPES = frozenset(
    {"Any", "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity"}
)
_CONSTANTS = {
    "ucum": "http://unitsofmeasure.org",
    "sct": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
}


def environment_constant(name: str) -> str | None:
    """The value of a constant environment variable (``%ucum``, ``%vs-x``, ``%ext-x``)
    (http://hl7.org/fhir/R4/fhirpath.html#variables)."""
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    if name.startswith("vs-"):
        return "http://hl7.org/fhir/ValueSet/" + name[3:]
    if name.startswith("ext-"):
        return "http://hl7.org/fhir/StructureDefinition/" + name[4:]
    return None


def _empty(ctx: Context, focus: list[Any]) -> list[Any]:
    return []


def _this(ctx: Context, focus: list[Any]) -> list[Any]:
    return focus


class Compiler:
    """Turns syntax trees into closures for one model's types."""

    def __init__(self, types: FhirTypes, functions: Mapping[str, FunctionSpec] = FUNCTIONS) -> None:
        self.types = types
        self.functions = functions

    def compile(self, expr: Expr, focus: TypeInfo | None = None) -> Fn:
        """The closure evaluating ``expr``; ``focus`` is the type ``$this`` is known to
        have at compile time, if any (a hint for fast paths)."""
        method = getattr(self, "_" + type(expr).__name__.lower())
        fn: Fn = method(expr, focus)
        return fn

    def values_function(
        self, expr: Expr
    ) -> Callable[[dict[str, Any], FhirTypes], list[Any]] | None:
        """For a plain member chain from a resource type, a function returning plain
        values straight from the JSON (no nodes); None for other expressions."""
        names: list[str] = []
        while isinstance(expr, Member) and expr.target is not None:
            names.append(expr.name)
            expr = expr.target
        if not isinstance(expr, Member) or not names:
            return None
        names.reverse()
        root = self.types.get(expr.name)
        if root is None or root.kind != "resource":
            return None
        chain = plan_chain(root, names)
        return None if chain is None else chain_values(chain)

    def resolve_type(self, spec: TypeSpec, pos: int) -> tuple[str, ...]:
        """The qualified type names a type specifier may denote.

        Raises:
            FhirPathError: for an unqualified name that is neither a FHIR nor a System type.
        """
        if spec.namespace is not None:
            return (f"{spec.namespace}.{spec.name}",)
        names = []
        if self.types.get(spec.name) is not None:
            names.append(f"FHIR.{spec.name}")
        if spec.name in SYSTEM_TYPES:
            names.append(f"System.{spec.name}")
        if not names:
            raise FhirPathError(f"unknown type {spec.name!r}", pos)
        return tuple(names)

    def _literal(self, expr: Literal, focus: TypeInfo | None) -> Fn:
        if expr.value is None:
            return _empty
        constant = [expr.value]
        return lambda ctx, focus: constant

    def _variable(self, expr: Variable, focus: TypeInfo | None) -> Fn:
        if expr.name == "this":
            return _this
        if expr.name == "index":
            return lambda ctx, focus: [] if ctx.index is None else [ctx.index]
        return lambda ctx, focus: ctx.total

    def _envvar(self, expr: EnvVar, focus: TypeInfo | None) -> Fn:
        name = expr.name
        constant = environment_constant(name)
        if constant is not None:
            value = [constant]
            return lambda ctx, focus: value
        builtin = {"context": "root", "resource": "resource", "rootResource": "resource"}.get(name)

        def lookup(ctx: Context, focus: list[Any]) -> list[Any]:
            found = ctx.variables.get(name)
            if found is not None:
                return found
            if builtin is not None:
                result: list[Any] = getattr(ctx, builtin)
                return result
            raise FhirPathError(f"undefined environment variable %{name}", expr.pos)

        return lookup

    def _member(self, expr: Member, focus: TypeInfo | None, narrow: tuple[str, ...] = ()) -> Fn:
        """A member path; with ``narrow`` (the types of a following ``ofType()``/``as``),
        a planned path reads only the JSON properties of a choice that can match."""
        names: list[str] = []
        node: Expr = expr
        while isinstance(node, Member) and node.target is not None:
            names.append(node.name)
            node = node.target
        names.reverse()
        base: Fn = _this
        base_type: TypeInfo | None = focus
        root: Member | None = node if isinstance(node, Member) else None
        type_filter = False
        if root is not None:
            info = self.types.get(root.name) if root.name[:1].isupper() else None
            if info is not None and info.kind in ("resource", "complex"):
                base_type, type_filter = info, True
                if not names:
                    return self._root_member(root)
            else:
                names = [root.name, *names]
        else:
            base, base_type = self.compile(node, focus), static_type(self.types, node, focus)
        steps = tuple(names)
        chain = plan_chain(base_type, names)
        if chain is not None:
            if narrow:
                chain = narrow_chain(chain, narrow)
            run = chain_nodes(chain, steps, type_filter)
            if base is _this:
                return run
            return lambda ctx, focus: run(ctx, base(ctx, focus))
        if root is not None and type_filter:
            base = self._root_member(root)

        def path(ctx: Context, focus: list[Any]) -> list[Any]:
            items = base(ctx, focus)
            for name in steps:
                if not items:
                    return items
                items = navigate(ctx, items, name)
            return items

        return path

    def _root_member(self, expr: Member) -> Fn:
        name = expr.name
        info = self.types.get(name) if name[:1].isupper() else None
        if info is not None and info.kind in ("resource", "complex"):
            qualified = info.qualified

            def type_filter(ctx: Context, focus: list[Any]) -> list[Any]:
                return [
                    item
                    for item in focus
                    if type(item) is Node and qualified in item.type.ancestors
                ]

            return type_filter
        return lambda ctx, focus: navigate(ctx, focus, name)

    def _indexer(self, expr: Indexer, focus: TypeInfo | None) -> Fn:
        target, index = self.compile(expr.target, focus), self.compile(expr.index, focus)

        def indexer(ctx: Context, focus: list[Any]) -> list[Any]:
            items = target(ctx, focus)
            position = single_int(index(ctx, focus), "index")
            if position is None or not 0 <= position < len(items):
                return []
            return [items[position]]

        return indexer

    def _unary(self, expr: Unary, focus: TypeInfo | None) -> Fn:
        operand = self.compile(expr.operand, focus)
        if expr.op == "-":
            return lambda ctx, focus: negate(operand(ctx, focus))

        def plus(ctx: Context, focus: list[Any]) -> list[Any]:
            items = operand(ctx, focus)
            item = single(items, "operand of unary +")
            value = prim(item)
            if (
                value is not None
                and type(value) not in (int, Decimal)
                and quantity_of(item) is None
            ):
                raise FhirPathError("unary + needs a number or Quantity", expr.pos)
            return items

        return plus

    def _typeop(self, expr: TypeOp, focus: TypeInfo | None) -> Fn:
        candidates = self.resolve_type(expr.type, expr.pos)
        if expr.op == "as" and isinstance(expr.operand, Member):
            operand = self._member(expr.operand, focus, candidates)
        else:
            operand = self.compile(expr.operand, focus)
        impl = FUNCTIONS[expr.op].impl
        return lambda ctx, focus: impl(ctx, operand(ctx, focus), candidates)  # type: ignore[no-any-return]

    def _binary(self, expr: Binary, focus: TypeInfo | None) -> Fn:
        left, right = self.compile(expr.left, focus), self.compile(expr.right, focus)
        op = expr.op
        if op in ("and", "or", "xor", "implies"):
            return logic(op, left, right)
        if op in ("=", "!=") and isinstance(expr.right, Literal) and type(expr.right.value) is str:
            return _string_equality(left, expr.right.value, op == "=")
        apply = BINARY[op]
        return lambda ctx, focus: apply(left(ctx, focus), right(ctx, focus))

    def _function(self, expr: Function, focus: TypeInfo | None) -> Fn:
        spec = self.functions.get(expr.name)
        if spec is None:
            raise FhirPathError(f"unknown function {expr.name}()", expr.pos)
        if not spec.min_args <= len(expr.args) <= spec.max_args and expr.name != "sort":
            raise FhirPathError(f"wrong number of arguments for {expr.name}()", expr.pos)
        target = _this if expr.target is None else self.compile(expr.target, focus)
        item = focus if expr.target is None else static_type(self.types, expr.target, focus)
        if expr.name == "iif":
            return self._iif(expr, target, item)
        if expr.name == "sort":
            return self._sort(expr, target, item)
        impl = spec.impl
        if spec.kind == "type":
            type_spec = type_spec_of(expr.args[0])
            if type_spec is None:
                raise FhirPathError(f"{expr.name}() needs a type name", expr.pos)
            candidates = self.resolve_type(type_spec, expr.pos)
            if isinstance(expr.target, Member) and expr.name != "is":
                target = self._member(expr.target, focus, candidates)
            return lambda ctx, focus: impl(ctx, target(ctx, focus), candidates)  # type: ignore[no-any-return]
        args = [
            self.compile(arg, item if i in spec.lazy else focus) for i, arg in enumerate(expr.args)
        ]
        if not args:
            return lambda ctx, focus: impl(ctx, target(ctx, focus))  # type: ignore[no-any-return]
        lazy = spec.lazy
        if len(args) == 1:
            arg = args[0]
            if 0 in lazy:
                return lambda ctx, focus: impl(ctx, target(ctx, focus), arg)  # type: ignore[no-any-return]
            return lambda ctx, focus: impl(ctx, target(ctx, focus), arg(ctx, focus))  # type: ignore[no-any-return]
        modes = tuple(i in lazy for i in range(len(args)))

        def call(ctx: Context, focus: list[Any]) -> list[Any]:
            values = [
                a if is_lazy else a(ctx, focus) for a, is_lazy in zip(args, modes, strict=True)
            ]
            return impl(ctx, target(ctx, focus), *values)  # type: ignore[no-any-return]

        return call

    def _iif(self, expr: Function, target: Fn, focus: TypeInfo | None) -> Fn:
        criterion, then = self.compile(expr.args[0], focus), self.compile(expr.args[1], focus)
        otherwise = self.compile(expr.args[2], focus) if len(expr.args) > 2 else _empty
        has_target = expr.target is not None

        def iif(ctx: Context, focus: list[Any]) -> list[Any]:
            if has_target:
                focus = target(ctx, focus)
                if len(focus) > 1:
                    raise FhirPathError("iif() input must be a single item", expr.pos)
            if as_bool(criterion(ctx, focus), "iif() criterion"):
                return then(ctx, focus)
            return otherwise(ctx, focus)

        return iif

    def _sort(self, expr: Function, target: Fn, focus: TypeInfo | None) -> Fn:
        keys: list[tuple[Fn, bool]] = []
        for arg in expr.args:
            if isinstance(arg, Unary) and arg.op == "-":
                keys.append((self.compile(arg.operand, focus), True))
            else:
                keys.append((self.compile(arg, focus), False))

        def order(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
            for (x, y), (_, descending) in zip(
                zip(a, b, strict=True), keys or [(_this, False)], strict=True
            ):
                if x is None or y is None:
                    result = (x is not None) - (y is not None)
                    if result:
                        return result
                    continue
                result = compare(x, y) or 0
                if result:
                    return -result if descending else result
            return 0

        def sort(ctx: Context, focus: list[Any]) -> list[Any]:
            items = target(ctx, focus)
            decorated: list[tuple[tuple[Any, ...], Any]]
            if keys:
                decorated = [
                    (tuple(prim(single(key(ctx, [item]), "sort key")) for key, _ in keys), item)
                    for item in items
                ]
            else:
                decorated = [((prim(item),), item) for item in items]
            by_keys = cmp_to_key(order)
            decorated.sort(key=lambda pair: by_keys(pair[0]))
            return [item for _, item in decorated]

        return sort


def _string_equality(left: Fn, constant: str, equal_to: bool) -> Fn:
    """``expr = 'text'`` / ``expr != 'text'``: the common filter, without the general
    collection comparison when the left side is one String."""
    right = [constant]
    general = BINARY["=" if equal_to else "!="]

    def compare_text(ctx: Context, focus: list[Any]) -> list[Any]:
        items = left(ctx, focus)
        if len(items) == 1:
            value = prim(items[0])
            if type(value) is str:
                return [(value == constant) is equal_to]
        return general(items, right)

    return compare_text
