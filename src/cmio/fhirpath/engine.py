"""The FHIRPath engine: compile once, evaluate many times.

:class:`FhirPathEngine` owns the FHIR types of one model and an LRU cache of
compiled expressions; :class:`CompiledExpression` evaluates against FHIR JSON.
Evaluation keeps its state in a per-call :class:`~cmio.fhirpath.context.Context`,
so one compiled expression may be used from many threads at once.

The module functions :func:`evaluate` and :func:`compile` build a throwaway
engine (and load the model unless one is given): convenient for one-off use,
but a long-lived caller should hold a :class:`FhirPathEngine`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from cmio.fhirpath.checker import Checker
from cmio.fhirpath.compiler import Compiler
from cmio.fhirpath.context import Context, Resolver, TerminologyProvider
from cmio.fhirpath.fhirtypes import ANY, FhirTypes, Node
from cmio.fhirpath.functions import FUNCTIONS, Fn, FunctionSpec
from cmio.fhirpath.navigation import plain_node
from cmio.fhirpath.parser import parse
from cmio.fhirpath.values import prim, type_name
from cmio.model import Model, load_model

__all__ = ["CompiledExpression", "FhirPathEngine", "TypedValue", "compile", "evaluate"]

_LOG = logging.getLogger("cmio.fhirpath.trace")
_NO_VARIABLES: Mapping[str, list[Any]] = MappingProxyType({})


class TypedValue(NamedTuple):
    """A result with its FHIRPath type (``FHIR.code``, ``System.Integer``...)."""

    value: Any
    namespace: str
    type: str


def _collection(value: Any, types: FhirTypes) -> list[Any]:
    if value is None:
        return []
    if type(value) in (list, tuple):
        return [plain_node(v, types) for v in value if v is not None]
    return [plain_node(value, types)]


def _public(item: Any) -> Any:
    if type(item) is Node:
        if item.value is None:
            return item.shadow
        value = prim(item)
        return item.value if value is item else value
    return item


class CompiledExpression:
    """A compiled FHIRPath expression (see :meth:`FhirPathEngine.compile`).

    Attributes:
        expression: the source text.
    """

    __slots__ = ("_fn", "_types", "_values", "expression")

    def __init__(
        self,
        expression: str,
        fn: Fn,
        types: FhirTypes,
        values: Callable[[dict[str, Any], FhirTypes], list[Any]] | None = None,
    ) -> None:
        self.expression = expression
        self._fn = fn
        self._types = types
        self._values = values

    def __repr__(self) -> str:
        return f"CompiledExpression({self.expression!r})"

    def nodes(
        self,
        resource: Any,
        variables: Mapping[str, Any] | None = None,
        *,
        resolver: Resolver | None = None,
        terminology: TerminologyProvider | None = None,
        strict: bool = False,
    ) -> list[Any]:
        """Evaluate and return the internal items (:class:`~cmio.fhirpath.fhirtypes.Node` or System values)."""
        types = self._types
        if type(resource) is dict:
            root = [Node(resource, types.resource(resource) if "resourceType" in resource else ANY)]
        else:
            root = _collection(resource, types)
        env: Mapping[str, list[Any]] = (
            {name: _collection(value, types) for name, value in variables.items()}
            if variables
            else _NO_VARIABLES
        )
        ctx = Context(types, root, env, resolver, terminology, _LOG, strict)
        return list(self._fn(ctx, root))

    def evaluate(
        self,
        resource: Any,
        variables: Mapping[str, Any] | None = None,
        *,
        resolver: Resolver | None = None,
        terminology: TerminologyProvider | None = None,
    ) -> list[Any]:
        """Evaluate against FHIR JSON (http://hl7.org/fhirpath/N1/#evaluation-model).

        Args:
            resource: the context: a resource (or any FHIR JSON object), a list of
                them, or None for an empty context.
            variables: user environment variables, ``%name`` -> value (a value or a list).
            resolver: for ``resolve()``, called with references that are neither
                contained (``#id``) nor in the context Bundle.
            terminology: for ``memberOf()``; without one, ``memberOf()`` is empty.

        Returns:
            The result collection: ``str``, ``bool``, ``int``, ``Decimal``, ``dict``
            for complex values, :class:`Date`/:class:`DateTime`/:class:`Time` and
            :class:`Quantity` objects.

        Raises:
            FhirPathError: on an evaluation error (e.g. a singleton was expected).
        """
        if self._values is not None and not variables and type(resource) is dict:
            return self._values(resource, self._types)
        return [
            _public(item)
            for item in self.nodes(resource, variables, resolver=resolver, terminology=terminology)
        ]

    def evaluate_typed(
        self,
        resource: Any,
        variables: Mapping[str, Any] | None = None,
        *,
        resolver: Resolver | None = None,
        terminology: TerminologyProvider | None = None,
    ) -> list[TypedValue]:
        """Like :meth:`evaluate`, with each result's type (``FHIR.code``, ``System.String``)."""
        items = self.nodes(resource, variables, resolver=resolver, terminology=terminology)
        return [TypedValue(_public(item), *type_name(item)) for item in items]


class FhirPathEngine:
    """Compiles and evaluates FHIRPath over FHIR R4 JSON.

    Args:
        model: the FHIR model (default: :func:`cmio.model.load_model`).
        cache_size: how many compiled expressions to keep (LRU).
        functions: extra functions (or replacements), by name, for host-specific
            additions such as SQL on FHIR's ``getResourceKey()``; see
            :class:`~cmio.fhirpath.functions.FunctionSpec`.
    """

    def __init__(
        self,
        model: Model | None = None,
        *,
        cache_size: int = 1024,
        functions: Mapping[str, FunctionSpec] | None = None,
    ) -> None:
        self.model = model if model is not None else load_model()
        self.types = FhirTypes(self.model)
        registry = FUNCTIONS if not functions else MappingProxyType({**FUNCTIONS, **functions})
        self._compiler = Compiler(self.types, registry)
        self._cached = lru_cache(maxsize=cache_size)(self._compile)

    def _compile(self, expression: str) -> CompiledExpression:
        tree = parse(expression)
        compiler = self._compiler
        fn, values = compiler.compile(tree), compiler.values_function(tree)
        return CompiledExpression(expression, fn, self.types, values)

    def compile(self, expression: str) -> CompiledExpression:
        """Parse and compile an expression (cached per engine).

        See http://hl7.org/fhirpath/N1/#grammar.

        Raises:
            FhirPathSyntaxError: if the expression does not parse.
            FhirPathError: for unknown functions, wrong argument counts, unknown types.
        """
        result: CompiledExpression = self._cached(expression)
        return result

    def evaluate(
        self,
        resource: Any,
        expression: str,
        variables: Mapping[str, Any] | None = None,
        *,
        resolver: Resolver | None = None,
        terminology: TerminologyProvider | None = None,
    ) -> list[Any]:
        """Compile (cached) and evaluate; see :meth:`CompiledExpression.evaluate`."""
        return self.compile(expression).evaluate(
            resource, variables, resolver=resolver, terminology=terminology
        )

    def check(
        self,
        expression: str,
        context_type: str,
        *,
        strict: bool = True,
        ordered_functions: bool = False,
    ) -> None:
        """Statically check an expression against a context type.

        Detects, without data, element names the type does not have, JSON names of
        choice elements (``valueQuantity``), a root type other than the context's,
        and in ``strict`` mode non-Boolean ``iif()`` criteria; with
        ``ordered_functions``, order-dependent functions on unordered collections.
        See http://hl7.org/fhirpath/N1/#type-safety-and-strict-evaluation.

        Raises:
            FhirPathSemanticError: describing the first problem found.
        """
        Checker(
            self.types, self._compiler, strict=strict, ordered_functions=ordered_functions
        ).check(parse(expression), context_type)


def compile(expression: str, *, model: Model | None = None) -> CompiledExpression:
    """Compile with a throwaway :class:`FhirPathEngine` (see its ``compile``)."""
    return FhirPathEngine(model, cache_size=1).compile(expression)


def evaluate(
    resource: Any,
    expression: str,
    variables: Mapping[str, Any] | None = None,
    *,
    model: Model | None = None,
    resolver: Resolver | None = None,
    terminology: TerminologyProvider | None = None,
) -> list[Any]:
    """Evaluate one expression with a throwaway :class:`FhirPathEngine`.

    See http://hl7.org/fhirpath/N1/#evaluation-model and
    :meth:`CompiledExpression.evaluate`. Without ``model`` the R4 model is loaded
    for the call: for repeated use, create a :class:`FhirPathEngine` once.
    """
    engine = FhirPathEngine(model, cache_size=1)
    return engine.evaluate(
        resource, expression, variables, resolver=resolver, terminology=terminology
    )
