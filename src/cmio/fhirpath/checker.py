"""Static checking of a FHIRPath expression against a context type.

Infers, without data, the possible types of every sub-expression from the R4
model and reports what cannot be right for the context type
(http://hl7.org/fhirpath/N1/#type-safety-and-strict-evaluation):

- always: a choice element used by its JSON name (``Observation.valueQuantity``);
- in strict mode: an element the type does not have (``name.given1``), a path
  rooted at another type (``Encounter.name`` on a Patient), a non-Boolean
  ``iif()`` criterion;
- with ``ordered_functions``: ``first()``, ``skip()``... on an unordered
  collection (``children()``, ``descendants()``).

Where the type is unknown (after ``resolve()``, on untyped JSON) checking stops
for that branch rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmio.fhirpath.compiler import Compiler, environment_constant
from cmio.fhirpath.errors import FhirPathError, FhirPathSemanticError
from cmio.fhirpath.fhirtypes import FhirTypes, TypeInfo, system_type
from cmio.fhirpath.parser import type_spec_of
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
from cmio.fhirpath.values import system_name

__all__ = ["Checker"]

_ORDERED = frozenset({"first", "last", "tail", "skip", "take", "single"})
_ITERATING = frozenset({"where", "select", "exists", "all", "repeat", "aggregate", "sort", "trace"})
_BOOLEAN = frozenset(
    {"empty", "exists", "all", "allTrue", "anyTrue", "allFalse", "anyFalse", "subsetOf", "supersetOf",
     "isDistinct", "not", "is", "hasValue", "conformsTo", "memberOf", "startsWith", "endsWith",
     "contains", "matches", "matchesFull", "comparable", "htmlChecks"}
)  # fmt: skip
_KEEP = frozenset(
    {"where", "first", "last", "tail", "skip", "take", "single", "distinct", "trace", "sort"}
)
_LOGIC = frozenset(
    {"and", "or", "xor", "implies", "=", "!=", "~", "!~", "<", ">", "<=", ">=", "in", "contains"}
)


@dataclass(frozen=True, slots=True)
class _Static:
    """What is known of a collection: its possible types (None: unknown) and order."""

    types: frozenset[TypeInfo] | None
    ordered: bool = True


_UNKNOWN = _Static(None)
_BOOL = _Static(frozenset({system_type("Boolean")}))


class Checker:
    """Checks expressions for one model's types (see :meth:`FhirPathEngine.check`)."""

    def __init__(
        self, types: FhirTypes, compiler: Compiler, *, strict: bool, ordered_functions: bool
    ) -> None:
        self.types = types
        self.compiler = compiler
        self.strict = strict
        self.ordered_functions = ordered_functions

    def check(self, expr: Expr, context_type: str) -> None:
        """Check ``expr`` with a context of type ``context_type``.

        Raises:
            FhirPathSemanticError: for the first problem found.
        """
        info = self.types.get(context_type)
        root = _UNKNOWN if info is None else _Static(frozenset({info}))
        self.root = root
        self.visit(expr, root)

    def fail(self, message: str, expr: Expr) -> None:
        raise FhirPathSemanticError(message, expr.pos)

    def visit(self, expr: Expr, focus: _Static) -> _Static:
        if isinstance(expr, Literal):
            name = system_name(expr.value)
            return _Static(
                frozenset() if expr.value is None else frozenset({system_type(name or "Any")})
            )
        if isinstance(expr, Variable):
            if expr.name == "this":
                return focus
            return (
                _Static(frozenset({system_type("Integer")})) if expr.name == "index" else _UNKNOWN
            )
        if isinstance(expr, EnvVar):
            if environment_constant(expr.name) is not None:
                return _Static(frozenset({system_type("String")}))
            return self.root if expr.name in ("context", "resource", "rootResource") else _UNKNOWN
        if isinstance(expr, Member):
            if expr.target is None:
                return self.root_member(expr, focus)
            return self.navigate(self.visit(expr.target, focus), expr.name, expr)
        if isinstance(expr, Function):
            return self.function(expr, focus)
        if isinstance(expr, Indexer):
            target = self.visit(expr.target, focus)
            self.visit(expr.index, focus)
            self.ordered(target, "[]", expr)
            return target
        if isinstance(expr, Unary):
            return self.visit(expr.operand, focus)
        if isinstance(expr, TypeOp):
            self.visit(expr.operand, focus)
            return _BOOL if expr.op == "is" else self.named(expr.type, expr)
        assert isinstance(expr, Binary)
        left, right = self.visit(expr.left, focus), self.visit(expr.right, focus)
        if expr.op in _LOGIC:
            return _BOOL
        if expr.op == "|" and left.types is not None and right.types is not None:
            return _Static(left.types | right.types)
        return _UNKNOWN

    def named(self, spec: TypeSpec, expr: Expr) -> _Static:
        try:
            names = self.compiler.resolve_type(spec, expr.pos)
        except FhirPathError as exc:
            raise FhirPathSemanticError(str(exc), expr.pos) from None
        infos = set()
        for qualified in names:
            namespace, _, name = qualified.partition(".")
            info = self.types.get(name) if namespace == "FHIR" else system_type(name)
            if info is not None:
                infos.add(info)
        return _Static(frozenset(infos))

    def ordered(self, target: _Static, name: str, expr: Expr) -> None:
        if self.ordered_functions and not target.ordered:
            self.fail(f"{name} needs an ordered collection; this one has no defined order", expr)

    def root_member(self, expr: Member, focus: _Static) -> _Static:
        name = expr.name
        info = self.types.get(name) if name[:1].isupper() else None
        if info is None or info.kind not in ("resource", "complex"):
            return self.navigate(focus, name, expr)
        if self.strict and focus.types is not None and focus.types:
            qualified = info.qualified
            if not any(
                qualified in t.ancestors or t.qualified in info.ancestors for t in focus.types
            ):
                names = ", ".join(sorted(t.name for t in focus.types))
                self.fail(f"the expression starts with {name}, but the context is {names}", expr)
        return _Static(frozenset({info}))

    def navigate(self, source: _Static, name: str, expr: Expr) -> _Static:
        if source.types is None:
            return _UNKNOWN
        found: set[TypeInfo] = set()
        known = False
        for info in source.types:
            if info.kind == "any":
                return _UNKNOWN
            if info.kind == "system":
                continue
            if info.kind == "primitive":
                element = self.types.get("Element")
                if element is None:
                    return _UNKNOWN
                info = element
            accessors = info.members.get(name)
            if accessors is None:
                if name in info.choice_names:
                    self.fail(f"{name!r} is a JSON name; use the element name and ofType()", expr)
                continue
            known = True
            for _, _, child in accessors:
                if child is None:
                    return _Static(None, source.ordered)
                found.add(child)
        if not known and self.strict and source.types:
            names = ", ".join(sorted(t.name for t in source.types))
            self.fail(f"{names} has no element {name!r}", expr)
        return _Static(frozenset(found), source.ordered)

    def function(self, expr: Function, focus: _Static) -> _Static:
        name = expr.name
        target = focus if expr.target is None else self.visit(expr.target, focus)
        if name in _ORDERED:
            self.ordered(target, f"{name}()", expr)
        if name in ("is", "as", "ofType"):
            spec = type_spec_of(expr.args[0]) if expr.args else None
            if spec is None:
                return _UNKNOWN
            return _BOOL if name == "is" else self.named(spec, expr)
        item = _Static(target.types)
        results = []
        for index, arg in enumerate(expr.args):
            iterating = name in _ITERATING and not (name == "aggregate" and index == 1)
            if name == "iif":
                results.append(self.visit(arg, target))
            else:
                results.append(self.visit(arg, item if iterating or name == "trace" else focus))
        if name == "iif" and results:
            criterion = results[0].types
            if self.strict and criterion is not None and criterion and criterion != _BOOL.types:
                self.fail("iif() criterion must be a Boolean", expr.args[0])
            branches = results[1:]
            if all(b.types is not None for b in branches):
                return _Static(frozenset().union(*(b.types or frozenset() for b in branches)))
            return _UNKNOWN
        if name in _BOOLEAN:
            return _BOOL
        if name in _KEEP:
            return target
        if name in ("children", "descendants"):
            return _Static(None, ordered=False)
        if name in ("select", "repeat") and results:
            return results[0]
        if name == "extension":
            extension = self.types.get("Extension")
            return _UNKNOWN if extension is None else _Static(frozenset({extension}))
        if name == "count":
            return _Static(frozenset({system_type("Integer")}))
        return _UNKNOWN
