"""Child navigation over FHIR JSON (http://hl7.org/fhirpath/N1/#path-selection).

``navigate(ctx, items, name)`` returns the ``name`` children of every item, in
order, flattening repeating elements. Typed nodes use the R4 model (choice
elements by their FHIRPath name, primitives merged with their ``_name``
companion); JSON the model does not describe is walked by property name.
"""

from __future__ import annotations

from typing import Any, Protocol

from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.fhirtypes import ANY, Accessor, FhirTypes, Node, TypeInfo, to_decimal

__all__ = ["children_of", "collect", "collect_choice", "navigate", "plain_node"]


class _HasTypes(Protocol):
    types: FhirTypes
    strict: bool


def plain_node(value: Any, types: FhirTypes) -> Any:
    """An item for a JSON value outside the model: objects stay nodes, scalars become
    System values."""
    kind = type(value)
    if kind is dict:
        return Node(value, types.resource(value) if "resourceType" in value else ANY)
    if kind is float:
        return to_decimal(value)
    return value


def _primitive(out: list[Any], value: Any, shadow: Any, child: TypeInfo) -> None:
    if type(value) is list or type(shadow) is list:
        values = value if type(value) is list else []
        shadows = shadow if type(shadow) is list else []
        load = child.load
        for i in range(max(len(values), len(shadows))):
            v = values[i] if i < len(values) else None
            s = shadows[i] if i < len(shadows) else None
            if v is not None or s is not None:
                out.append(Node(None if v is None else load(v), child, s))
        return
    out.append(Node(None if value is None else child.load(value), child, shadow))


def _typed(out: list[Any], node: Node, name: str, ctx: _HasTypes) -> None:
    info = node.type
    members = info._members
    accessors = (members if members is not None else info.members).get(name)
    if accessors is None:
        if name in info.choice_names:
            raise FhirPathError(
                f"{name!r} is a JSON name: a choice element is reached by its FHIRPath name "
                f"(e.g. value, value.ofType(Quantity))"
            )
        if ctx.strict:
            raise FhirPathError(f"{info.name} has no element {name!r}")
        return
    index = info.choices.get(name)
    if index is None:
        collect(out, node.value, accessors, ctx.types)
    else:
        collect_choice(out, node.value, index, ctx.types)


def collect_choice(
    out: list[Any], obj: dict[str, Any], index: dict[str, Accessor], types: FhirTypes
) -> None:
    """Like :func:`collect` for a choice element with many types: scan the object's
    keys (a handful) instead of probing every ``valueX`` name."""
    seen: list[Accessor] = []
    for key in obj:
        accessor = index.get(key)
        if accessor is not None and accessor not in seen:
            seen.append(accessor)
            collect(out, obj, (accessor,), types)


def collect(
    out: list[Any], obj: dict[str, Any], accessors: tuple[Accessor, ...], types: FhirTypes
) -> None:
    """Append to ``out`` the nodes ``accessors`` select in one JSON object."""
    for json_name, shadow_name, child in accessors:
        value = obj.get(json_name)
        if shadow_name is not None:
            shadow = obj.get(shadow_name)
            if value is None and shadow is None:
                continue
            assert child is not None
            _primitive(out, value, shadow, child)
            continue
        if value is None:
            continue
        if type(value) is list:
            if child is None:
                out.extend(Node(v, types.resource(v)) for v in value)
            else:
                out.extend(Node(v, child) for v in value)
        elif child is None:
            out.append(Node(value, types.resource(value)))
        else:
            out.append(Node(value, child))


def _untyped(out: list[Any], obj: dict[str, Any], name: str, ctx: _HasTypes) -> None:
    value = obj.get(name)
    if value is None:
        return
    types = ctx.types
    if type(value) is list:
        for v in value:
            if v is not None:
                out.append(plain_node(v, types))
    else:
        out.append(plain_node(value, types))


def navigate(ctx: _HasTypes, items: list[Any], name: str) -> list[Any]:
    """The ``name`` children of ``items``, in order."""
    out: list[Any] = []
    for item in items:
        if type(item) is Node:
            if item.type.kind == "any":
                if type(item.value) is dict:
                    _untyped(out, item.value, name, ctx)
            elif type(item.value) is dict:
                _typed(out, item, name, ctx)
            elif type(item.shadow) is dict and name in ("id", "extension"):
                element = ctx.types.get("Element")
                if element is not None:
                    _typed(out, Node(item.shadow, element), name, ctx)
    return out


def children_of(ctx: _HasTypes, item: Any) -> list[Any]:
    """All child nodes of one item (http://hl7.org/fhirpath/N1/#children-collection)."""
    if type(item) is not Node:
        return []
    out: list[Any] = []
    if type(item.value) is not dict:
        if item.shadow is not None:
            for name in ("id", "extension"):
                out.extend(navigate(ctx, [item], name))
        return out
    if item.type.kind == "any":
        for key in item.value:
            if key != "resourceType" and not key.startswith("_"):
                _untyped(out, item.value, key, ctx)
        return out
    members = item.type.members
    for name in members:
        _typed(out, item, name, ctx)
    return out
