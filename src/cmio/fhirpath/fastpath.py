"""Fast paths for member chains rooted at a resource type (``Patient.name.given``).

Most search-parameter expressions are such chains. When every intermediate
step has one statically known complex type, the chain's JSON properties are
resolved at compile time, and evaluation walks plain dicts, creating nodes only
for the final items (:func:`chain_nodes`) or none at all when the caller wants
plain values (:func:`chain_values`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.fhirtypes import Accessor, FhirTypes, Node, TypeInfo
from cmio.fhirpath.navigation import collect, collect_choice, navigate

__all__ = ["Chain", "Step", "chain_nodes", "chain_values", "narrow_chain", "plan_chain"]

Chain = tuple[TypeInfo, tuple[str, ...], tuple[Accessor, ...], dict[str, Accessor] | None]
"""(root type, JSON names of the intermediate steps, accessors of the last step, and
for a last step that is a choice of many types, its key index)."""
Step = Callable[[Context, list[Any]], list[Any]]
"""A navigation step: (context, items) -> children."""


def plan_chain(info: TypeInfo | None, names: list[str]) -> Chain | None:
    """The compile-time plan of ``.a.b.c`` on values of type ``info``, or None if it
    needs general navigation."""
    if info is None or info.kind in ("any", "system", "primitive") or not names:
        return None
    root = info
    middle: list[str] = []
    for name in names[:-1]:
        accessors = info.members.get(name)
        if accessors is None or len(accessors) != 1:
            return None
        json_name, shadow, child = accessors[0]
        if shadow is not None or child is None or child.kind not in ("complex", "backbone"):
            return None
        middle.append(json_name)
        info = child
    last = info.members.get(names[-1])
    if last is None:
        return None
    return root, tuple(middle), last, info.choices.get(names[-1])


def narrow_chain(chain: Chain, candidates: tuple[str, ...]) -> Chain:
    """The chain keeping, in its last step, only the JSON properties whose type may be
    one of ``candidates`` (qualified names), for ``value.ofType(Quantity)``.

    Only an optimisation: the type test still runs on the results.
    """
    root, middle, last, _ = chain
    kept = tuple(
        accessor
        for accessor in last
        if accessor[2] is None
        or (
            accessor[2].qualified in candidates
            if accessor[2].kind == "primitive"
            else any(name in accessor[2].ancestors for name in candidates)
        )
    )
    if len(kept) == len(last):
        return chain
    return root, middle, kept, None


def _objects(value: dict[str, Any], middle: tuple[str, ...]) -> list[Any]:
    objects = [value]
    for json_name in middle:
        found: list[Any] = []
        for obj in objects:
            child = obj.get(json_name)
            if child is not None:
                if type(child) is list:
                    found.extend(child)
                else:
                    found.append(child)
        if not found:
            return found
        objects = found
    return objects


def chain_nodes(chain: Chain, names: tuple[str, ...], type_filter: bool) -> Step:
    """The closure applying a planned chain to a collection, returning nodes.

    With ``type_filter`` (a path starting with a type name, ``Patient.name``), items
    not of the root type are dropped; otherwise items of another type than planned
    are navigated the general way.
    """
    root, middle, last, choice = chain
    qualified = root.qualified

    def run(ctx: Context, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        types = ctx.types
        for item in items:
            if type(item) is Node and (
                item.type is root or (type_filter and qualified in item.type.ancestors)
            ):
                value = item.value
                for obj in _objects(value, middle) if middle else (value,):
                    if choice is None:
                        collect(out, obj, last, types)
                    else:
                        collect_choice(out, obj, choice, types)
            elif not type_filter:
                found = [item]
                for name in names:
                    found = navigate(ctx, found, name)
                    if not found:
                        break
                out.extend(found)
        return out

    return run


def chain_values(chain: Chain) -> Callable[[dict[str, Any], FhirTypes], list[Any]]:
    """The function evaluating a planned chain from a resource type on a resource,
    returning plain values (what :meth:`CompiledExpression.evaluate` returns)."""
    root, middle, last, _ = chain
    qualified = root.qualified

    def run(resource: dict[str, Any], types: FhirTypes) -> list[Any]:
        name = resource.get("resourceType")
        info = types.get(name) if type(name) is str else None
        if info is None or qualified not in info.ancestors:
            return []
        out: list[Any] = []
        for obj in _objects(resource, middle):
            for json_name, shadow_name, child in last:
                value = obj.get(json_name)
                if shadow_name is None:
                    if value is None:
                        continue
                    if type(value) is list:
                        out.extend(value)
                    else:
                        out.append(value)
                    continue
                assert child is not None
                shadow = obj.get(shadow_name)
                if shadow is None:
                    if value is None:
                        continue
                    convert = child.convert
                    if type(value) is list:
                        out.extend(convert(v) for v in value if v is not None)
                    else:
                        out.append(convert(value))
                    continue
                nodes: list[Any] = []
                collect(nodes, obj, ((json_name, shadow_name, child),), types)
                out.extend(node.shadow if node.value is None else node.value for node in nodes)
        return out

    return run
