"""Composite search parameters (https://hl7.org/fhir/R4/search.html#composite).

For each item of the composite's expression (the resource itself, or e.g. each
``Observation.component``), every component expression is evaluated on that
item; when all components have values, their rows are written to the typed
tables under the parameter name ``<code>$<k>:<n>`` (component ``k`` of item
``n``). A search joins the components of the same item.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import repeat
from typing import Any

from cmio.fhirpath import FhirPathEngine
from cmio.fhirpath.engine import CompiledExpression
from cmio.fhirpath.fhirtypes import FhirTypes, Node, TypeInfo
from cmio.indexing import values as v
from cmio.indexing.direct import DirectPlan, plan_relative
from cmio.model import Model
from cmio.model.types import SearchParamDef

__all__ = [
    "CompositePlan",
    "component_types",
    "composite_param",
    "json_heads",
    "plan_composite",
    "typed_heads",
]

Adder = Callable[[v.Rows, str, Any], None]
Memo = dict[tuple[int, str], list[Any]]
"""Per resource: (id of an item's JSON object, component expression) to its values, or
(0, base expression) to the base's items: composites sharing them evaluate them once.
(The adders remember their rows per value themselves: :mod:`cmio.indexing.memo`.)"""
_SHAPES = 4096
_BASE_PATH = re.compile(
    r"\s*([A-Z][A-Za-z0-9]*)\s*(?:\|\s*\1\.([a-z][A-Za-z0-9]*)|\.([a-z][A-Za-z0-9]*))?\s*$"
)
_HEAD = re.compile(r"\s*([a-z][A-Za-z0-9]*)\s*(?:\.|$)")
_OF_TYPE = re.compile(r"\s*([a-z][A-Za-z0-9]*)\.ofType\(\s*([A-Za-z][A-Za-z0-9]*)\s*\)\s*$")


def json_heads(expression: str) -> tuple[str, ...] | None:
    """JSON property prefixes one of which an item needs for ``expression`` to have a
    value (``value.ofType(Quantity)`` needs ``value...`` or ``_value...``), or None
    when the expression is not a plain member path."""
    heads: list[str] = []
    for branch in expression.split("|"):
        m = _HEAD.match(branch)
        if m is None or m.group(1) in ("true", "false"):
            return None
        heads += [m.group(1), "_" + m.group(1)]
    return tuple(heads)


def typed_heads(model: Model, expression: str) -> tuple[str, ...] | None:
    """Like :func:`json_heads`, but exact for choice elements filtered by type:
    ``value.ofType(Quantity)`` needs ``valueQuantity`` (or a Quantity subtype such as
    ``valueAge``), not any ``value...`` property. Falls back to :func:`json_heads`.
    See https://hl7.org/fhir/R4/formats.html#choice."""
    heads: list[str] = []
    for branch in expression.split("|"):
        m = _OF_TYPE.match(branch)
        names = _type_and_subtypes(model, m.group(2)) if m is not None else ()
        if m is None or not names:
            return json_heads(expression)
        for name in names:
            key = m.group(1) + name[0].upper() + name[1:]
            heads += [key, "_" + key]
    return tuple(heads)


def _type_and_subtypes(model: Model, wanted: str) -> tuple[str, ...]:
    """Model types named ``wanted`` (any case of the first letter) or derived from it."""
    want = wanted.lower()
    found: list[str] = []
    for name, tdef in model.types.items():
        cur: Any = tdef
        for _ in range(16):  # walk the base chain
            if cur is None:
                break
            if cur.name.lower() == want:
                found.append(name)
                break
            cur = model.types.get(cur.base) if cur.base else None
    return tuple(found)


def composite_param(code: str, component: int, item: int | None = None) -> str:
    """The index parameter name of a composite component (``item`` None: the prefix)."""
    return f"{code}${component}:" + ("" if item is None else str(item))


def component_types(model: Model, spd: SearchParamDef) -> tuple[str, ...] | None:
    """The search types of the components, or None if one is not a standard parameter."""
    by_url = {p.url: p for p in model.search_params if p.url in {c[0] for c in spd.components}}
    found = [by_url.get(url) for url, _ in spd.components]
    if any(p is None or p.type in ("composite", "special") for p in found):
        return None
    return tuple(p.type for p in found if p is not None)


class CompositePlan:
    """The compiled base and component expressions of one composite parameter."""

    def __init__(
        self,
        code: str,
        base: CompiledExpression,
        components: list[tuple[CompiledExpression, Adder]],
        heads: list[tuple[str, ...] | None] | None = None,
        types: FhirTypes | None = None,
    ) -> None:
        self.code = code
        self.base = base
        self.components = components
        #: the memo slot of the base's items, and the components' names on the first item
        self._items_slot = (0, base.expression)
        self._first = [composite_param(code, k, 0) for k in range(len(components))]
        #: with the engine's types, components are read straight from the JSON where
        #: :func:`~cmio.indexing.direct.plan_relative` can (planned per item type)
        self.types = types
        self._direct: dict[tuple[int, TypeInfo], DirectPlan | None] = {}
        #: the base is the resource itself (``Observation``), one member of it
        #: (``Observation.component``) or both (``Observation | Observation.component``)
        self._root: str | None = None
        self._member: tuple[str, str] | None = None
        path = _BASE_PATH.match(base.expression)
        if path is not None:
            self._root = None if path.group(3) else path.group(1)
            name = path.group(3) or path.group(2)
            self._member = (name, "_" + name) if name else None
        #: item JSON key tuples -> whether every component can have a value (bounded)
        self._shapes: dict[tuple[str, ...], bool] = {}
        #: per component, the JSON property prefixes it reads (None: unknown)
        self.heads = (
            heads if heads is not None else [json_heads(c.expression) for c, _ in components]
        )

    def idle(self, resource: dict[str, Any]) -> bool:
        """Whether :meth:`add` surely adds nothing to ``resource``, judged by its type and
        JSON keys alone (so a caller may decide it once per key set): the base is a
        member the resource lacks, or the resource itself and some component can have
        no value on it (see :meth:`_complete`)."""
        root, member = self._root, self._member
        if member is not None and any(k.startswith(member) for k in resource):
            return False
        if root is None:
            return member is not None
        if self.types is None or resource.get("resourceType") != root:
            return False
        return not self._complete(tuple(resource))

    def _complete(self, shape: tuple[str, ...]) -> bool:
        """Whether an item with these JSON keys can give every component a value."""
        ok = self._shapes.get(shape)
        if ok is None:
            ok = not any(
                h is not None and not any(k.startswith(h) for k in shape) for h in self.heads
            )
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            self._shapes[shape] = ok
        return ok

    def add(self, out: v.Rows, resource: dict[str, Any], memo: Memo | None = None) -> None:
        """Append this parameter's rows for ``resource`` to ``out``.

        ``memo``: shared by the composites of one resource (see :data:`Memo`).
        """
        if memo is None:
            memo = {}
        items = memo.get(self._items_slot)
        if items is None:
            root, member = self._root, self._member
            # ``Type.member`` gives no items without the member; ``Type`` is the resource
            absent = member is None or not any(map(str.startswith, resource, repeat(member)))
            if member is not None and absent and root is None:
                items = []
            elif (
                absent
                and root is not None
                and self.types is not None
                and resource.get("resourceType") == root
            ):
                items = [Node(resource, self.types.resource(resource))]
            else:
                try:
                    items = self.base.nodes(resource)
                except Exception:
                    return
            memo[self._items_slot] = items
        viable, first = self._complete, self._first
        for n, item in enumerate(items):
            key = id(item.value) if type(item) is Node and type(item.value) is dict else 0
            # (not the resource itself: callers ask :meth:`idle` first; judging only saves work)
            if key and item.value is not resource and not viable(tuple(item.value)):
                continue  # some component has no value on items of this shape
            rows: v.Rows = {}
            complete = True
            for k, (compiled, adder) in enumerate(self.components):
                found = memo.get((key, compiled.expression)) if key else None
                if found is None:
                    try:
                        direct = self._direct_for(k, item.type) if key else None
                        found = direct.values(item.value) if direct is not None else None
                        if found is None:
                            found = compiled.evaluate([item])
                    except Exception:
                        found = []
                    if key:
                        memo[(key, compiled.expression)] = found
                if not found:
                    complete = False
                    break
                param = first[k] if n == 0 else composite_param(self.code, k, n)
                for value in found:
                    adder(rows, param, value)
            if not complete:
                continue
            for table, table_rows in rows.items():
                if table == "string_index":  # no :text rows for components
                    table_rows = [r for r in table_rows if not r[0].endswith(":text")]
                out.setdefault(table, []).extend(table_rows)

    def _direct_for(self, k: int, info: TypeInfo) -> DirectPlan | None:
        """The direct walk of component ``k`` on items of type ``info`` (planned once)."""
        slot = (k, info)
        if slot in self._direct:
            return self._direct[slot]
        plan = None
        if self.types is not None:
            plan = plan_relative(self.types, info, self.components[k][0].expression)
        self._direct[slot] = plan
        return plan


def plan_composite(
    engine: FhirPathEngine,
    model: Model,
    spd: SearchParamDef,
    base: str,
    adders: dict[str, Adder],
) -> CompositePlan | None:
    """Compile one composite parameter for a resource type (None if unsupported)."""
    from cmio.indexing.extract import rewrite_as

    types = component_types(model, spd)
    if types is None:
        return None
    components: list[tuple[CompiledExpression, Adder]] = []
    for (_, expression), ptype in zip(spd.components, types, strict=True):
        adder = adders.get(ptype)
        if adder is None:
            return None
        components.append((engine.compile(rewrite_as(expression)), adder))
    heads = [typed_heads(model, c.expression) for c, _ in components]
    return CompositePlan(spd.code, engine.compile(base), components, heads, engine.types)
