"""FHIR types for FHIRPath navigation, built on demand from the R4 model.

Every FHIR value met during evaluation is a :class:`Node`: the JSON object (for
complex types, backbone elements and resources) or the primitive's System value
(``str``, ``bool``, ``int``, ``Decimal``, :class:`~cmio.fhirpath.temporal.Date`...),
its :class:`TypeInfo`, and for primitives the ``_name`` companion holding their
id and extensions (https://hl7.org/fhir/R4/json.html#primitive).

A :class:`TypeInfo` maps each FHIRPath child name to its JSON properties: a
choice element ``value[x]`` is reachable as ``value`` and yields whichever
``valueQuantity``/``valueString``... is present, typed accordingly
(http://hl7.org/fhir/R4/fhirpath.html#types). :class:`FhirTypes` owns them; one
exists per engine and fills itself lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cmio.fhirpath.temporal import parse_date, parse_datetime, parse_time
from cmio.model.types import (
    K_BACKBONE,
    K_COMPLEX,
    K_RESOURCE,
    K_SHADOW,
    LAST_PRIMITIVE_KIND,
    JsonProperty,
    Model,
)

__all__ = ["ANY", "Accessor", "FhirTypes", "Node", "TypeInfo", "to_decimal"]

Accessor = tuple[str, str | None, "TypeInfo | None"]
"""(JSON name, ``_name`` companion for primitives, child type; None = a resource)."""


def to_decimal(value: Any) -> Decimal:
    """A JSON number as an exact Decimal (floats through their shortest repr)."""
    if type(value) is float:
        return Decimal(repr(value))
    return value if isinstance(value, Decimal) else Decimal(value)


def _as_is(value: Any) -> Any:
    return value


def _temporal(parser: Callable[[str], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        parsed = parser(value) if type(value) is str else None
        return value if parsed is None else parsed

    return convert


def _integer(value: Any) -> Any:
    return value if type(value) is int else int(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "decimal": to_decimal,
    "integer": _integer,
    "positiveInt": _integer,
    "unsignedInt": _integer,
    "date": _temporal(parse_date),
    "dateTime": _temporal(parse_datetime),
    "instant": _temporal(parse_datetime),
    "time": _temporal(parse_time),
}
_LAZY = frozenset({"date", "dateTime", "instant", "time"})
_SYSTEM_OF_PRIMITIVE = {
    "boolean": "Boolean",
    "integer": "Integer",
    "positiveInt": "Integer",
    "unsignedInt": "Integer",
    "decimal": "Decimal",
    "date": "Date",
    "dateTime": "DateTime",
    "instant": "DateTime",
    "time": "Time",
}


_CHOICE_SCAN = 4
"""Choice elements with more types than this are found by scanning the object's keys."""


class TypeInfo:
    """A FHIR (or System) type as navigation needs it.

    Attributes:
        namespace: ``FHIR`` or ``System``.
        name: type name (``HumanName``, ``code``, ``Patient``, ``BackboneElement``).
        kind: ``primitive``, ``complex``, ``backbone``, ``resource``, ``system`` or ``any``.
        ancestors: qualified names of the type and its bases (``FHIR.code``, ``FHIR.string``...).
        base: qualified name of the base type, None at the root.
        convert: for primitives, JSON value -> System value.
        load: what navigation applies when it creates a node: ``convert``, except for
            dates and times, which :func:`~cmio.fhirpath.values.prim` parses on first use.
        system: for primitives, the System type their value has (``String``, ``Date``...).
    """

    __slots__ = (
        "_index",
        "_members",
        "_owner",
        "ancestors",
        "base",
        "choice_names",
        "choices",
        "convert",
        "kind",
        "load",
        "name",
        "namespace",
        "system",
    )

    def __init__(
        self,
        namespace: str,
        name: str,
        kind: str,
        ancestors: frozenset[str],
        base: str | None = None,
        index: dict[str, JsonProperty] | None = None,
        owner: FhirTypes | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.kind = kind
        self.ancestors = ancestors
        self.base = base
        self.convert = _CONVERTERS.get(name, _as_is)
        self.load = _as_is if name in _LAZY else self.convert
        self.system = _SYSTEM_OF_PRIMITIVE.get(name, "String")
        self._index = index
        self._owner = owner
        self._members: dict[str, tuple[Accessor, ...]] | None = None if index is not None else {}
        self.choice_names: frozenset[str] = frozenset()
        self.choices: dict[str, dict[str, Accessor]] = {}

    def __repr__(self) -> str:
        return f"TypeInfo({self.namespace}.{self.name})"

    @property
    def qualified(self) -> str:
        """``namespace.name``."""
        return f"{self.namespace}.{self.name}"

    @property
    def members(self) -> dict[str, tuple[Accessor, ...]]:
        """FHIRPath child name -> the JSON properties holding it (built on first use)."""
        members = self._members
        if members is None:
            members = self._members = self._build()
        return members

    def _build(self) -> dict[str, tuple[Accessor, ...]]:
        if self._index is None or self._owner is None:
            return {}
        owner = self._owner
        members: dict[str, list[Accessor]] = {}
        choices: set[str] = set()
        for json_name, prop in self._index.items():
            if prop.kind == K_SHADOW:
                continue
            element = prop.element
            if element.choice:
                choices.add(json_name)
            shadow = prop.partner if prop.kind <= LAST_PRIMITIVE_KIND else None
            members.setdefault(element.name, []).append((json_name, shadow, owner.child_type(prop)))
        self.choice_names = frozenset(choices)
        for name, accessors in members.items():
            if len(accessors) > _CHOICE_SCAN:
                index: dict[str, Accessor] = {}
                for accessor in accessors:
                    index[accessor[0]] = accessor
                    if accessor[1] is not None:
                        index[accessor[1]] = accessor
                self.choices[name] = index
        return {name: tuple(accessors) for name, accessors in members.items()}


ANY = TypeInfo("System", "Any", "any", frozenset({"System.Any"}))
"""The type of JSON not described by the model: navigated by JSON property names."""


class Node:
    """A FHIR value: ``value`` is the JSON object, or the primitive's System value
    (None for a primitive that has only an id/extensions); ``shadow`` is the
    primitive's ``_name`` object."""

    __slots__ = ("shadow", "type", "value")

    def __init__(self, value: Any, type_: TypeInfo, shadow: Any = None) -> None:
        self.value = value
        self.type = type_
        self.shadow = shadow

    def __repr__(self) -> str:
        return f"Node({self.value!r}, {self.type.qualified})"


class FhirTypes:
    """The :class:`TypeInfo` of every FHIR type of a model, created on first use."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._types: dict[str, TypeInfo] = {}
        self._backbones: dict[str, TypeInfo] = {}

    def get(self, name: str) -> TypeInfo | None:
        """The FHIR type named ``name`` (``Patient``, ``HumanName``, ``code``), if any."""
        info = self._types.get(name)
        if info is not None:
            return info
        typedef = self.model.types.get(name)
        if typedef is None:
            return None
        ancestors = [f"FHIR.{name}"]
        base = typedef.base
        while base is not None:
            ancestors.append(f"FHIR.{base}")
            parent = self.model.types.get(base)
            base = parent.base if parent is not None else None
        kind = "primitive" if typedef.kind == "primitive-type" else typedef.kind.split("-")[0]
        info = TypeInfo(
            "FHIR",
            name,
            kind,
            frozenset(ancestors),
            f"FHIR.{typedef.base}" if typedef.base else None,
            typedef.json_index if kind != "primitive" else None,
            self,
        )
        self._types[name] = info
        return info

    def resource(self, value: Any) -> TypeInfo:
        """The type of a resource JSON object (``ANY`` if its resourceType is unknown)."""
        name = value.get("resourceType") if type(value) is dict else None
        info = self.get(name) if type(name) is str else None
        return info if info is not None and info.kind == "resource" else ANY

    def child_type(self, prop: JsonProperty) -> TypeInfo | None:
        """The type of the values of one JSON property (None: a resource, typed by value)."""
        if prop.kind == K_RESOURCE:
            return None
        if prop.kind == K_BACKBONE:
            element = prop.element
            key = element.path
            info = self._backbones.get(key)
            if info is None:
                name = element.types[0] if element.types else "BackboneElement"
                bases = (
                    ("FHIR.BackboneElement", "FHIR.Element")
                    if name == "BackboneElement"
                    else ("FHIR.Element",)
                )
                info = TypeInfo(
                    "FHIR", name, "backbone", frozenset(bases), bases[-1], prop.members, self
                )
                self._backbones[key] = info
            return info
        code = prop.type_code
        if code.startswith("System."):
            return system_type(code[7:])
        if prop.kind == K_COMPLEX or prop.kind <= LAST_PRIMITIVE_KIND:
            return self.get(code) or ANY
        return ANY


_SYSTEM_TYPES = {
    name: TypeInfo("System", name, "system", frozenset({f"System.{name}", "System.Any"}))
    for name in ("Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity")
}


def system_type(name: str) -> TypeInfo:
    """The TypeInfo of a System type (``String``, ``Integer``...)."""
    return _SYSTEM_TYPES.get(name, ANY)
