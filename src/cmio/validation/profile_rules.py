"""The compiled form of a StructureDefinition: element rules, slicing, the profile.

Built by :func:`cmio.validation.profiles.compile_profile` from a snapshot
(https://hl7.org/fhir/R4/structuredefinition.html) and walked by the validator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.fhirpath.fhirtypes import TypeInfo
from cmio.validation.invariants import Invariant

__all__ = ["NO_VALUE", "CompiledProfile", "ElementRule", "Slicing"]

NO_VALUE: Any = object()
"""Marks an absent fixed or pattern value."""


@dataclass(frozen=True, slots=True)
class Slicing:
    """``ElementDefinition.slicing`` (https://hl7.org/fhir/R4/profiling.html#slicing).

    Attributes:
        discriminators: (type, path) pairs: type is value, pattern, type, profile or exists.
        ordered: slices must appear in the order they are defined.
        rules: ``open``, ``closed`` or ``openAtEnd``.
    """

    discriminators: tuple[tuple[str, str], ...]
    ordered: bool
    rules: str


@dataclass(slots=True, eq=False)
class ElementRule:
    """One element definition of a snapshot, with its children and slices.

    Attributes:
        id: the element id (``Observation.component:SystolicBP.code``).
        path: the element path (``Observation.component.code``).
        name: JSON base name (``value`` for ``value[x]``).
        slice_name: for a slice, its name.
        min: minimum cardinality.
        max: maximum cardinality (None: ``*``).
        type_codes: allowed type codes.
        type_profiles: type code -> profiles its values must conform to.
        target_types: for references, the allowed target resource types (empty: any).
        fixed: the fixed value (``NO_VALUE`` if none).
        pattern: the pattern value (``NO_VALUE`` if none).
        binding: (strength, value set URL) for required and extensible bindings.
        invariants: constraints to evaluate on each value.
        slicing: the slicing, if the element is sliced.
        slices: the slices, in definition order.
        children: child rules by JSON base name.
        json_map: JSON property name -> (child rule, type code, ``_name`` partner).
        check_min: report values fewer than ``min``.
        check_max: report values more than ``max``.
        check_types: report values of a type not in ``type_codes``.
        focus: the FHIRPath type of the element's values, when it has one type.
        active: the rule or something below it has a check (profiles only).
        content_reference: the path this element reuses the definition of.
        card_children: the children whose cardinality the profile narrows.
        sliced_children: the children with a slice that is required (min > 0).
        trivial: a base-definition primitive whose only check is ``ele-1``, which
            any present value satisfies.
        merged: cache of the rule's invariants merged with a datatype's (by rule id).
    """

    id: str
    path: str
    name: str
    slice_name: str | None
    min: int
    max: int | None
    type_codes: tuple[str, ...]
    type_profiles: dict[str, tuple[str, ...]]
    target_types: tuple[str, ...]
    fixed: Any
    pattern: Any
    binding: tuple[str, str] | None
    invariants: tuple[Invariant, ...]
    slicing: Slicing | None
    focus: TypeInfo | None
    check_min: bool = False
    check_max: bool = False
    check_types: bool = False
    slices: list[ElementRule] = field(default_factory=list)
    children: dict[str, ElementRule] = field(default_factory=dict)
    json_map: dict[str, tuple[ElementRule, str, str | None]] = field(default_factory=dict)
    active: bool = True
    content_reference: str | None = None
    card_children: tuple[ElementRule, ...] = ()
    sliced_children: tuple[ElementRule, ...] = ()
    trivial: bool = False
    merged: dict[int, tuple[Invariant, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The element id, for messages."""
        return self.id


@dataclass(slots=True, eq=False)
class CompiledProfile:
    """A compiled StructureDefinition.

    Attributes:
        url: canonical URL.
        name: the StructureDefinition's name (or title).
        type: the constrained type (``Patient``, ``Extension``, ``Quantity``).
        is_base: a core type definition rather than a profile.
        root: the rule of the root element.
        by_id: every rule by element id.
    """

    url: str
    name: str
    type: str
    is_base: bool
    root: ElementRule
    by_id: dict[str, ElementRule]
