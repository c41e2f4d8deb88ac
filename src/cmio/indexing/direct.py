"""Search expressions read straight from the JSON, without the FHIRPath engine.

Most standard search-parameter expressions for a resource type are a member chain
(``Observation.code``), a chain with a type filter (``Observation.value.ofType(Quantity)``)
or a union of such (``Condition.onset.ofType(dateTime) | Condition.onset.ofType(Period)``).
:func:`plan_direct` resolves their JSON properties once, with the FHIRPath engine's own
type information (:func:`cmio.fhirpath.fastpath.plan_chain`), and :meth:`DirectPlan.values`
then walks plain dicts and returns exactly what :meth:`CompiledExpression.evaluate
<cmio.fhirpath.engine.CompiledExpression.evaluate>` returns
(http://hl7.org/fhirpath/N1/#path-selection, http://hl7.org/fhirpath/N1/#oftypetype-type-specifier).

When a resource holds something the walk does not model (a primitive's ``_name``
extension companion, two values of one choice element, values from two branches of
a union, which FHIRPath's ``|`` de-duplicates by its own equality), ``values`` answers
None and the caller evaluates the expression the general way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cmio.fhirpath.compiler import SYSTEM_TYPES
from cmio.fhirpath.fastpath import plan_chain
from cmio.fhirpath.fhirtypes import FhirTypes, TypeInfo
from cmio.fhirpath.temporal import Temporal

__all__ = ["DirectPlan", "TextMemo", "plan_direct", "plan_relative", "temporal_text"]

_BRANCH = re.compile(
    r"([A-Za-z]+)((?:\.[A-Za-z]+)+?)(?:\.ofType\(([A-Za-z]+)\)((?:\.[A-Za-z]+)*))?"
)
_RELATIVE = re.compile(r"([a-z][A-Za-z]*(?:\.[A-Za-z]+)*?)(?:\.ofType\(([A-Za-z]+)\))?")
_KEYWORDS = frozenset(
    {"true", "false", "and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod"}
)
_TEMPORAL = frozenset({"date", "dateTime", "instant"})
_MEMO_LIMIT = 50_000
Load = Callable[[Any], Any] | None
"""Applied to each primitive JSON value found (None: a complex value, taken as is)."""
Leaf = tuple[str, str | None, Load]
"""(JSON name, ``_name`` companion or None, load)."""
Branch = tuple[tuple[str, ...], tuple[Leaf, ...], bool]
"""(JSON names of the intermediate steps, last-step properties, last step is a choice)."""
TextMemo = dict[Callable[[Any], Any], dict[str, str]]
"""Per converter, a date's JSON text -> the text :func:`~cmio.indexing.values.add_date` sees."""


class DirectPlan:
    """The JSON walk of one planned expression (see the module docstring)."""

    __slots__ = ("branches",)

    def __init__(self, branches: tuple[Branch, ...]) -> None:
        self.branches = branches

    def keys(self) -> frozenset[str]:
        """The top-level JSON properties the walk reads: a resource holding none of them
        gets ``[]`` from :meth:`values` (never None), so the caller may skip the plan."""
        found: set[str] = set()
        for middle, last, _ in self.branches:
            if middle:
                found.add(middle[0])  # intermediate steps are complex: no ``_name`` twin
                continue
            for json_name, shadow_name, _ in last:
                found.add(json_name)
                if shadow_name is not None:
                    found.add(shadow_name)
        return frozenset(found)

    def values(self, resource: dict[str, Any]) -> list[Any] | None:
        """The expression's result on ``resource``, or None: evaluate it the general way."""
        found: list[Any] | None = None
        for middle, last, choice in self.branches:
            out: list[Any] = []
            objects = _objects(resource, middle) if middle else (resource,)
            if objects is None:
                return None
            for obj in objects:
                hits = 0
                for json_name, shadow_name, load in last:
                    if shadow_name is not None and shadow_name in obj:
                        return None
                    value = obj.get(json_name)
                    if value is None:
                        continue
                    hits += 1
                    if load is None:
                        if type(value) is list:
                            out.extend(value)
                        else:
                            out.append(value)
                    elif type(value) is list:
                        out.extend(load(item) for item in value if item is not None)
                    else:
                        out.append(load(value))
                if hits > 1 and choice:
                    return None
            if out:
                if found is not None:
                    return None
                found = out
        return [] if found is None else found


def _objects(value: dict[str, Any], middle: tuple[str, ...]) -> list[Any] | None:
    """The objects at the end of ``middle``; None if one is not a JSON object (the
    engine's evaluation fails there, and the caller lets it)."""
    objects: list[Any] = [value]
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
        for obj in found:
            if type(obj) is not dict:
                return None
        objects = found
    return objects


def temporal_text(convert: Callable[[Any], Any], memo: TextMemo) -> Callable[[Any], Any]:
    """A load for date/dateTime/instant values under a date parameter: the text the
    parsed value prints as (what :func:`~cmio.indexing.values.add_date` reads from it),
    remembered per JSON text, so a date met again is not parsed again."""
    texts = memo.setdefault(convert, {})

    def load(value: Any) -> Any:
        if type(value) is not str:
            return convert(value)
        text = texts.get(value)
        if text is None:
            parsed = convert(value)
            if not isinstance(parsed, Temporal):
                return parsed
            text = parsed.iso()
            if len(texts) >= _MEMO_LIMIT:
                texts.clear()
            texts[value] = text
        return text

    return load


def plan_direct(
    types: FhirTypes,
    rtype: str,
    expression: str,
    date_texts: TextMemo | None = None,
) -> DirectPlan | None:
    """The direct walk of ``expression`` on resources of type ``rtype``, or None when
    the expression is not a union of member chains with optional ``ofType()``.

    ``date_texts``: for a date parameter, dates are loaded as their printed text
    (:func:`temporal_text`) instead of as parsed values.
    """
    info = types.get(rtype)
    if info is None or info.kind != "resource":
        return None
    branches: list[Branch] = []
    for text in expression.split("|"):
        m = _BRANCH.fullmatch(text.strip())
        if m is None:
            return None
        root, path, of_type, tail = m.groups()
        if f"FHIR.{root}" not in info.ancestors:
            if types.get(root) is None:
                return None
            continue  # another type's branch: never matches this type's resources
        names = path[1:].split(".")
        if tail:
            branch = _typed_member(types, info, names, of_type, tail[1:].split("."), date_texts)
        else:
            branch = _branch(types, info, names, of_type, date_texts)
        if branch is None:
            return None
        if branch[1]:
            branches.append(branch)
    return DirectPlan(tuple(branches))


def plan_relative(types: FhirTypes, info: TypeInfo, expression: str) -> DirectPlan | None:
    """Like :func:`plan_direct` for an expression evaluated on an element of type
    ``info`` (``value.ofType(Quantity)`` on an ``Observation.component``); the walk's
    ``values`` then takes that element's JSON object."""
    if info.kind not in ("resource", "complex", "backbone"):
        return None
    branches: list[Branch] = []
    for text in expression.split("|"):
        m = _RELATIVE.fullmatch(text.strip())
        if m is None:
            return None
        path, of_type = m.groups()
        if path.split(".", 1)[0] in _KEYWORDS:
            return None
        branch = _branch(types, info, path.split("."), of_type, None)
        if branch is None:
            return None
        if branch[1]:
            branches.append(branch)
    return DirectPlan(tuple(branches))


def _branch(
    types: FhirTypes,
    info: TypeInfo,
    names: list[str],
    of_type: str | None,
    date_texts: TextMemo | None,
) -> Branch | None:
    """One branch's walk (with no leaves if ``ofType`` keeps no property), or None."""
    chain = plan_chain(info, names)
    if chain is None:
        return None
    _, middle, last, choice = chain
    accessors = last
    if of_type is not None:
        kept = _of_type(types, last, of_type)
        if kept is None:
            return None
        accessors = kept
    leaves: list[Leaf] = []
    for json_name, shadow_name, child in accessors:
        if child is None:
            return None
        leaves.append((json_name, shadow_name, _load(child, date_texts)))
    return middle, tuple(leaves), choice is not None or len(last) > 1


def _typed_member(
    types: FhirTypes,
    info: TypeInfo,
    names: list[str],
    of_type: str,
    tail: list[str],
    date_texts: TextMemo | None,
) -> Branch | None:
    """A branch that goes on after its type filter (``Observation.value.ofType(
    CodeableConcept).text``): the filter must keep exactly one JSON property, of a
    complex type, which the walk then steps into like any other member. None otherwise."""
    chain = plan_chain(info, names)
    if chain is None:
        return None
    _, middle, last, _ = chain
    kept = _of_type(types, last, of_type)
    if kept is None or len(kept) != 1:
        return None
    json_name, shadow_name, child = kept[0]
    if shadow_name is not None or child is None or child.kind not in ("complex", "backbone"):
        return None
    rest = _branch(types, child, tail, None, date_texts)
    if rest is None:
        return None
    return (*middle, json_name, *rest[0]), rest[1], rest[2]


def _of_type(
    types: FhirTypes, last: tuple[Any, ...], name: str
) -> tuple[tuple[str, str | None, TypeInfo | None], ...] | None:
    """The properties whose values ``ofType(name)`` keeps (the FHIRPath ``ofType`` test:
    a FHIR primitive only as itself, other types also as a base type)."""
    candidates = []
    if types.get(name) is not None:
        candidates.append(f"FHIR.{name}")
    if name in SYSTEM_TYPES:
        candidates.append(f"System.{name}")
    if not candidates:
        return None
    kept = []
    for accessor in last:
        child = accessor[2]
        if child is None:
            return None
        if child.kind == "primitive":
            if child.qualified in candidates:
                kept.append(accessor)
        elif any(c in child.ancestors for c in candidates):
            kept.append(accessor)
    return tuple(kept)


def _load(child: TypeInfo, date_texts: TextMemo | None) -> Load:
    if child.kind != "primitive":
        return None
    if date_texts is not None and child.name in _TEMPORAL:
        return temporal_text(child.convert, date_texts)
    return child.convert
