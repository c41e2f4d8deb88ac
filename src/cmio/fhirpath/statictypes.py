"""Compile-time type inference for the compiler's fast paths.

``static_type(types, expr, focus)`` is the single FHIR type every item of
``expr`` is known to have at compile time, or None. It is an optimisation hint
only: the fast paths it enables check each item's actual type and fall back to
general navigation, so a wrong or missing guess never changes a result.
"""

from __future__ import annotations

from cmio.fhirpath.fhirtypes import FhirTypes, TypeInfo
from cmio.fhirpath.parser import type_spec_of
from cmio.fhirpath.syntax import Expr, Function, Member, TypeOp, TypeSpec, Variable

__all__ = ["member_type", "static_type"]

_SAME_TYPE = frozenset(
    {
        "where",
        "first",
        "last",
        "tail",
        "skip",
        "take",
        "single",
        "distinct",
        "trace",
        "intersect",
        "exclude",
    }
)


def member_type(info: TypeInfo | None, name: str) -> TypeInfo | None:
    """The single type of the ``name`` children of ``info`` values, if there is one."""
    if info is None or info.kind in ("any", "system", "primitive"):
        return None
    accessors = info.members.get(name)
    if not accessors:
        return None
    children = {child for _, _, child in accessors}
    if len(children) != 1:
        return None
    return next(iter(children))


def _named(types: FhirTypes, spec: TypeSpec | None) -> TypeInfo | None:
    if spec is None or spec.namespace not in (None, "FHIR"):
        return None
    return types.get(spec.name)


def static_type(types: FhirTypes, expr: Expr, focus: TypeInfo | None) -> TypeInfo | None:
    """The FHIR type all items of ``expr`` have, evaluated with focus type ``focus``."""
    if isinstance(expr, Variable):
        return focus if expr.name == "this" else None
    if isinstance(expr, Member):
        if expr.target is None:
            name = expr.name
            info = types.get(name) if name[:1].isupper() else None
            if info is not None and info.kind in ("resource", "complex"):
                return info
            return member_type(focus, name)
        return member_type(static_type(types, expr.target, focus), expr.name)
    if isinstance(expr, TypeOp):
        return _named(types, expr.type) if expr.op == "as" else None
    if isinstance(expr, Function):
        target = focus if expr.target is None else static_type(types, expr.target, focus)
        if expr.name in _SAME_TYPE:
            return target
        if expr.name in ("ofType", "as") and expr.args:
            return _named(types, type_spec_of(expr.args[0]))
        if expr.name == "extension":
            return types.get("Extension")
    return None
