"""FHIRPath invariants (``ElementDefinition.constraint``), compiled once.

Each constraint of a snapshot (https://hl7.org/fhir/R4/elementdefinition.html#constraints,
https://hl7.org/fhir/R4/validation.html#constraints) becomes an :class:`Invariant`:
its expression compiled by the FHIRPath compiler of :mod:`cmio.fhirpath` for
the element's type, and two shortcuts that keep typical resources cheap:

* ``ele-1`` ("All FHIR elements must have a @value or children") and ``dom-3``
  (contained resources are referenced) are evaluated natively: ``ele-1`` holds
  on every element, and ``dom-3`` walks the whole resource four times per
  contained resource, so running their FHIRPath would dominate;
* a *guard*: the child elements whose absence alone makes the expression true
  (``contained.meta.security.empty()`` holds without ``contained``;
  ``dataAbsentReason.empty() or value.empty()`` holds without
  ``dataAbsentReason``). When none of them is present the expression is not run.

An invariant fails only when its expression yields ``false``: an empty result
(an optional element the expression tests is absent, e.g. ``ref-1`` on a
Reference with only a display) is not a failure. The ``as()`` *function* is
read as ``ofType()``, as the R4 definitions use it on collections (``dom-3``:
``descendants().as(canonical)``) where FHIRPath N1 requires a single item.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cmio.fhirpath.compiler import Compiler
from cmio.fhirpath.context import Context, Resolver
from cmio.fhirpath.context import TerminologyProvider as FhirPathTerminology
from cmio.fhirpath.fhirtypes import FhirTypes, Node, TypeInfo
from cmio.fhirpath.functions import Fn
from cmio.fhirpath.parser import parse
from cmio.fhirpath.syntax import Binary, Expr, Function, Member

__all__ = [
    "DOM_3",
    "ELE_1",
    "STRUCTURAL",
    "Invariant",
    "InvariantCompiler",
    "Native",
    "contained_are_referenced",
    "element_has_content",
    "evaluate_invariant",
]

ELE_1 = "hasValue() or (children().count() > id.count())"
"""The expression of ``ele-1``, checked natively by :func:`element_has_content`."""

DOM_3 = (
    "contained.where((('#'+id in (%resource.descendants().reference | "
    "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
    "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() or "
    "descendants().where(as(canonical) = '#').exists() or "
    "descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()"
)
"""The expression of ``dom-3``, checked natively by :func:`contained_are_referenced`."""

Native = Callable[[Any, Any], bool]
"""A native check: (JSON value, ``_name`` companion) -> holds."""

STRUCTURAL: Mapping[str, str] = MappingProxyType(
    {
        "ext-1": "extension.exists() != value.exists()",
        "dom-2": "contained.contained.empty()",
    }
)
"""Invariants that :func:`cmio.validation.validate_structure` already checks (key -> expression)."""

_LOG = logging.getLogger("cmio.validation.invariants")
_AS_FUNCTION = re.compile(r"(?<![\w$%`'])as\(")
_NO_VARIABLES: Mapping[str, list[Any]] = MappingProxyType({})
# Functions that map an empty input to an empty output: a member chain through
# them is empty when its first member is absent.
_EMPTY_PRESERVING = frozenset(
    {
        "where",
        "select",
        "ofType",
        "first",
        "last",
        "tail",
        "distinct",
        "trace",
        "extension",
        "resolve",
        "children",
        "descendants",
        "repeat",
    }
)


@dataclass(frozen=True, slots=True)
class Invariant:
    """One compiled constraint.

    Attributes:
        key: ``constraint.key`` (``pat-1``).
        severity: ``error`` or ``warning``.
        human: the constraint's description.
        expression: the FHIRPath source.
        fn: the compiled expression (None for natively checked ones).
        guard: JSON property names; if the focus object has none of them the
            invariant holds without evaluation (None: always evaluate).
        native: the native check replacing the expression, if any.
        source: the StructureDefinition that defined the constraint, if given.
    """

    key: str
    severity: str
    human: str
    expression: str
    fn: Fn | None
    guard: frozenset[str] | None
    native: Native | None
    source: str


def element_has_content(value: Any, shadow: Any) -> bool:
    """``ele-1`` natively: a value, or children other than ``id``.

    See https://hl7.org/fhir/R4/elementdefinition.html#ele-1 (constraint on Element).
    """
    if type(value) is dict:
        return any(key != "id" for key in value)
    if value is not None:
        return True
    return type(shadow) is dict and any(key != "id" for key in shadow)


def _hash_strings(value: Any, found: set[str]) -> None:
    if type(value) is dict:
        for item in value.values():
            _hash_strings(item, found)
    elif type(value) is list:
        for item in value:
            _hash_strings(item, found)
    elif type(value) is str and value.startswith("#"):
        found.add(value)


def contained_are_referenced(resource: Any, shadow: Any = None) -> bool:
    """``dom-3`` natively: each contained resource (with an id) is referenced as
    ``#id`` from the resource, or itself refers to its container as ``#``.

    Any string value of the form ``#id`` counts as a reference (the expression
    looks at references, canonicals, uris and urls). See
    https://hl7.org/fhir/R4/references.html#contained.
    """
    contained = resource.get("contained") if type(resource) is dict else None
    if type(contained) is not list:
        return True
    referenced: set[str] = set()
    _hash_strings(resource, referenced)
    for item in contained:
        cid = item.get("id") if type(item) is dict else None
        if type(cid) is not str or "#" + cid in referenced:
            continue
        inner: set[str] = set()
        _hash_strings(item, inner)
        if "#" not in inner:
            return False
    return True


def _element_has_content(value: Any, shadow: Any) -> bool:
    return element_has_content(value, shadow)


_NATIVE: Mapping[str, Native] = MappingProxyType(
    {ELE_1: _element_has_content, DOM_3: contained_are_referenced}
)


def _chain_root(expr: Expr | None) -> str | None:
    """The first member name of a path made of members and empty-preserving functions."""
    while expr is not None:
        if type(expr) is Member:
            if expr.target is None:
                return expr.name
            expr = expr.target
        elif type(expr) is Function and expr.name in _EMPTY_PRESERVING and expr.target is not None:
            expr = expr.target
        else:
            return None
    return None


def _guard(expr: Expr) -> set[str] | None:
    """Member names whose joint absence makes ``expr`` true (None: no such set found)."""
    if type(expr) is Function and not expr.args:
        if expr.name == "empty":
            root = _chain_root(expr.target)
            return {root} if root is not None else None
        if expr.name == "not" and type(expr.target) is Function and expr.target.name == "exists":
            inner = expr.target
            root = _chain_root(inner.target) if not inner.args else None
            return {root} if root is not None else None
    if type(expr) is Function and expr.name == "all":
        root = _chain_root(expr.target)
        return {root} if root is not None else None
    if type(expr) is Binary:
        if expr.op == "and":
            left, right = _guard(expr.left), _guard(expr.right)
            return left | right if left is not None and right is not None else None
        if expr.op == "or":
            left, right = _guard(expr.left), _guard(expr.right)
            if left is None or right is None:
                return left if right is None else right
            return left if len(left) <= len(right) else right
        if expr.op == "implies":
            premise = expr.left
            if type(premise) is Function and premise.name == "exists" and not premise.args:
                root = _chain_root(premise.target)
                return {root} if root is not None else None
    return None


def _json_names(info: TypeInfo, names: set[str]) -> frozenset[str] | None:
    members = info.members
    found: set[str] = set()
    for name in names:
        accessors = members.get(name)
        if accessors is None:
            return None
        for json_name, shadow_name, _ in accessors:
            found.add(json_name)
            if shadow_name is not None:
                found.add(shadow_name)
    return frozenset(found)


class InvariantCompiler:
    """Compiles constraints for one model's FHIRPath types, each expression once per focus type.

    Args:
        types: the FHIRPath view of the model.
    """

    def __init__(self, types: FhirTypes) -> None:
        self.types = types
        self._compiler = Compiler(types)
        self._cache: dict[tuple[str, str, str], Invariant] = {}

    def compile(self, constraint: Mapping[str, Any], focus: TypeInfo | None) -> Invariant | None:
        """Compile one ``ElementDefinition.constraint`` (None if it has no expression).

        Raises:
            cmio.fhirpath.FhirPathError: if the expression does not compile.
        """
        expression = constraint.get("expression")
        key = str(constraint.get("key", "?"))
        if type(expression) is not str or not expression.strip():
            return None
        focus_name = focus.qualified if focus is not None else ""
        cache_key = (key, expression, focus_name)
        found = self._cache.get(cache_key)
        if found is not None:
            return found
        severity = "warning" if constraint.get("severity") == "warning" else "error"
        human = str(constraint.get("human", ""))
        source = str(constraint.get("source", ""))
        native = _NATIVE.get(expression)
        if native is not None:
            invariant = Invariant(key, severity, human, expression, None, None, native, source)
        else:
            tree = parse(_AS_FUNCTION.sub("ofType(", expression))
            fn = self._compiler.compile(tree, focus)
            names = _guard(tree)
            guard = None
            if names is not None and focus is not None and focus.kind != "primitive":
                guard = _json_names(focus, names)
            invariant = Invariant(key, severity, human, expression, fn, guard, None, source)
        self._cache[cache_key] = invariant
        return invariant


def evaluate_invariant(
    invariant: Invariant,
    types: FhirTypes,
    focus: Node,
    resource: Node,
    *,
    root: Node | None = None,
    resolver: Resolver | None = None,
    terminology: FhirPathTerminology | None = None,
) -> bool:
    """Whether an invariant holds on one element (https://hl7.org/fhir/R4/validation.html).

    It fails only on a ``false`` result (see the module docstring).

    Args:
        invariant: the compiled invariant.
        types: the FHIRPath types the invariant was compiled with.
        focus: the element, a typed node.
        resource: the resource holding it (``%resource``).
        root: the outermost resource (``%rootResource``) when it differs from ``resource``.
        resolver: for ``resolve()``.
        terminology: for ``memberOf()``.

    Raises:
        FhirPathError: if the evaluation fails.
    """
    if invariant.native is not None:
        return invariant.native(focus.value, focus.shadow)
    guard = invariant.guard
    if guard is not None and type(focus.value) is dict:
        value = focus.value
        if not any(name in value for name in guard):
            return True
    fn = invariant.fn
    if fn is None:  # pragma: no cover - only native invariants lack a function
        return True
    focus_list = [focus]
    variables = _NO_VARIABLES if root is None else {"rootResource": [root]}
    ctx = Context(types, focus_list, variables, resolver, terminology, _LOG)
    ctx.resource = [resource]
    result = fn(ctx, focus_list)
    if not result:
        return True
    if len(result) == 1:
        item = result[0]
        if type(item) is Node:
            item = item.value
        if type(item) is bool:
            return item
    return True
