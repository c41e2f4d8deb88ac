"""The compact FHIR R4 type model: frozen, slotted dataclasses.

The model is built once from the official StructureDefinitions
(https://hl7.org/fhir/R4/structuredefinition.html), SearchParameters
(https://hl7.org/fhir/R4/searchparameter.html) and CompartmentDefinitions
(https://hl7.org/fhir/R4/compartmentdefinition.html), then cached. All objects are
immutable by convention (dicts inside are never mutated after the build) and are
compared by identity: the element graph is cyclic where a ``contentReference``
points back to an ancestor (``Questionnaire.item.item``).

Besides the definitions, every structure (a type, or an element with inline
children) carries ``json_index``: JSON property name -> :class:`JsonProperty`,
with choice types expanded (``valueQuantity``) and the ``_name`` companions of
primitives (https://hl7.org/fhir/R4/json.html#primitive), so that walking FHIR
JSON is a dict lookup per property.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "K_BACKBONE",
    "K_BASE64",
    "K_BOOLEAN",
    "K_COMPLEX",
    "K_DECIMAL",
    "K_INTEGER",
    "K_POSITIVE_INT",
    "K_RESOURCE",
    "K_SHADOW",
    "K_STRING",
    "K_UNSIGNED_INT",
    "K_XHTML",
    "LAST_PRIMITIVE_KIND",
    "CompartmentDef",
    "ElementDef",
    "JsonProperty",
    "Model",
    "Required",
    "SearchParamDef",
    "TypeDef",
]

# JSON property kinds (JsonProperty.kind). Kinds up to LAST_PRIMITIVE_KIND are
# primitive values, which JSON represents as strings, numbers or booleans.
K_STRING = 0
"""A primitive represented as a JSON string, checked with ``JsonProperty.regex``."""
K_BOOLEAN = 1
"""``boolean``: JSON true/false."""
K_INTEGER = 2
"""``integer``: JSON number without fraction, 32-bit signed."""
K_POSITIVE_INT = 3
"""``positiveInt``: integer >= 1."""
K_UNSIGNED_INT = 4
"""``unsignedInt``: integer >= 0."""
K_DECIMAL = 5
"""``decimal``: JSON number."""
K_BASE64 = 6
"""``base64Binary``: JSON string of base64 characters."""
K_XHTML = 7
"""``xhtml``: the narrative ``div``, a JSON string."""
LAST_PRIMITIVE_KIND = K_XHTML
K_SHADOW = 8
"""``_name``: the id/extensions of a primitive (an Element-shaped object, or array of them)."""
K_COMPLEX = 9
"""A complex datatype: JSON object validated with the type's ``json_index``."""
K_BACKBONE = 10
"""An element with inline children (BackboneElement/Element): JSON object."""
K_RESOURCE = 11
"""A resource (``contained``, ``Bundle.entry.resource``): JSON object with ``resourceType``."""

Required = tuple[tuple[str, tuple[str, ...]], ...]
"""Mandatory children of a structure: (element key, JSON names any of which satisfies it)."""


_T = TypeVar("_T")


def _fast_pickle(cls: type[_T]) -> type[_T]:
    """Give a frozen slotted dataclass a cheap ``__setstate__``.

    The generic one in :mod:`dataclasses` re-computes ``fields()`` for every
    object, which made loading the cached model three times slower.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    setters: tuple[Callable[[Any, Any], None], ...] = tuple(
        getattr(cls, name).__set__ for name in names
    )

    def __getstate__(self: Any) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in names])

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for setter, value in zip(setters, state, strict=True):
            setter(self, value)

    setattr(cls, "__getstate__", __getstate__)  # noqa: B010
    setattr(cls, "__setstate__", __setstate__)  # noqa: B010
    return cls


class JsonProperty(NamedTuple):
    """How one JSON property name of a structure is to be read.

    Attributes:
        element: the element definition the property belongs to.
        type_code: the type of this JSON property (for a choice, the chosen type).
        kind: one of the ``K_*`` constants.
        repeats: the element repeats (max != 1), so JSON holds an array.
        partner: for a primitive, the ``_name`` companion; for ``_name``, the value name.
        regex: for ``K_STRING`` primitives, the type's full-match regex (if any).
        members: for objects, the ``json_index`` of their content.
        required: for objects, the mandatory children of their content.
    """

    element: ElementDef
    type_code: str
    kind: int
    repeats: bool
    partner: str | None
    regex: re.Pattern[str] | None
    members: dict[str, JsonProperty] | None
    required: Required

    def __reduce__(self) -> tuple[Any, ...]:
        # tuple.__new__ rebuilds the object in C, without the generated __new__.
        return (tuple.__new__, (JsonProperty, tuple(self)))


@_fast_pickle
@dataclass(frozen=True, slots=True, eq=False)
class ElementDef:
    """One element of a type (https://hl7.org/fhir/R4/elementdefinition.html).

    Attributes:
        name: JSON name without ``[x]`` (``deceased`` for ``deceased[x]``).
        path: the definition path, e.g. ``Patient.contact.name``.
        min: minimum cardinality.
        max: maximum cardinality, None for ``*``.
        types: type codes (``string``, ``HumanName``, ``Reference``,
            ``BackboneElement``...). FHIRPath System types are mapped: a resource's
            ``id`` is ``id``, ``Element.id`` is ``string``, ``Extension.url`` is
            ``uri``, and a primitive's ``value`` is ``System.String`` etc.
        choice: the element is a choice ``name[x]``; JSON names are ``name`` +
            the capitalised type code (``valueQuantity``).
        target_types: for Reference/canonical, the allowed target resource types
            (empty = any).
        children: inline children (BackboneElement/Element), keyed like
            ``TypeDef.elements``; for a ``contentReference`` the referenced
            element's children. None for elements typed by a datatype.
        is_modifier: isModifier.
        is_summary: isSummary (part of ``_summary=true``).
        content_reference: the referenced path (without ``#``), if any.
        json_index: for elements with children, JSON name -> JsonProperty.
        required: for elements with children, their mandatory children.
    """

    name: str
    path: str
    min: int
    max: int | None
    types: tuple[str, ...]
    choice: bool
    target_types: tuple[str, ...]
    children: dict[str, ElementDef] | None = field(repr=False)
    is_modifier: bool
    is_summary: bool
    content_reference: str | None
    json_index: dict[str, JsonProperty] | None = field(repr=False)
    required: Required = field(repr=False)

    @property
    def key(self) -> str:
        """The key of this element in its parent's ``elements``/``children`` dict."""
        return self.name + "[x]" if self.choice else self.name

    @property
    def repeats(self) -> bool:
        """True if the element may repeat (JSON array)."""
        return self.max != 1

    def json_name(self, type_code: str) -> str:
        """The JSON property name of this element when it has type ``type_code``."""
        if not self.choice:
            return self.name
        return self.name + type_code[:1].upper() + type_code[1:]


@_fast_pickle
@dataclass(frozen=True, slots=True, eq=False)
class TypeDef:
    """A resource type, complex datatype or primitive type.

    See https://hl7.org/fhir/R4/datatypes.html and https://hl7.org/fhir/R4/resourcelist.html.

    Attributes:
        name: type name (``Patient``, ``HumanName``, ``date``).
        kind: ``primitive-type``, ``complex-type`` or ``resource``.
        abstract: True for Resource, DomainResource, Element, BackboneElement.
        base: name of the base type, None for Resource and Element.
        url: canonical URL of the StructureDefinition.
        elements: direct child elements, keyed by JSON name (``deceased[x]`` for choices).
        regex: for primitives, the full-match regex of the value
            (http://hl7.org/fhir/StructureDefinition/regex), if any.
        json_index: JSON property name -> JsonProperty for the type's content
            (``resourceType`` is not an element and is not listed).
        required: mandatory direct children.
    """

    name: str
    kind: str
    abstract: bool
    base: str | None
    url: str
    elements: dict[str, ElementDef] = field(repr=False)
    regex: re.Pattern[str] | None
    json_index: dict[str, JsonProperty] = field(repr=False)
    required: Required = field(repr=False)


@_fast_pickle
@dataclass(frozen=True, slots=True)
class SearchParamDef:
    """A standard search parameter (https://hl7.org/fhir/R4/searchparameter.html).

    Attributes:
        url: canonical URL.
        code: the name used in the query string (``birthdate``).
        name: computer-friendly name.
        base: resource types it applies to.
        type: number, date, string, token, reference, composite, quantity, uri, special.
        expression: FHIRPath expression extracting the values, None for special ones.
        xpath_usage: normal, phonetic, nearby, distance, other.
        target: for reference parameters, the target resource types.
        modifiers: allowed modifiers (empty: the standard ones for the type).
        comparators: allowed comparators (eq, ne, gt, lt, ge, le, sa, eb, ap).
        multiple_or: whether repeated values separated by comma are allowed (None = unstated).
        multiple_and: whether the parameter may repeat (None = unstated).
        components: for composites, (definition URL, expression) pairs.
    """

    url: str
    code: str
    name: str
    base: tuple[str, ...]
    type: str
    expression: str | None
    xpath_usage: str | None
    target: tuple[str, ...]
    modifiers: tuple[str, ...]
    comparators: tuple[str, ...]
    multiple_or: bool | None
    multiple_and: bool | None
    components: tuple[tuple[str, str], ...]

    def expression_for(self, resource_type: str) -> str | None:
        """The part of ``expression`` that applies to ``resource_type``.

        Parameters shared by several types have a union expression
        (``Patient.birthDate | Person.birthDate | RelatedPerson.birthDate``); this
        keeps the branches that start with ``resource_type`` (optionally inside
        parentheses), or returns the whole expression if none does.
        """
        if self.expression is None or len(self.base) < 2:
            return self.expression
        branches = [b for b in _split_union(self.expression) if _head(b) == resource_type]
        return " | ".join(branches) if branches else self.expression


@dataclass(frozen=True, slots=True)
class CompartmentDef:
    """A compartment (https://hl7.org/fhir/R4/compartmentdefinition.html).

    Attributes:
        code: Patient, Encounter, RelatedPerson, Practitioner or Device.
        url: canonical URL.
        resources: resource type -> search parameter codes linking it to the
            compartment (``{def}`` for the compartment's own type); types that are
            not in the compartment are absent.
    """

    code: str
    url: str
    resources: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """The FHIR R4 definitions a server needs, built from hl7.fhir.r4.core 4.0.1.

    Obtain it with :func:`cmio.model.load_model` and pass it around.

    Attributes:
        fhir_version: ``4.0.1``.
        package_sha256: SHA-256 of the definitions tarball the model was built from.
        types: every resource type, complex datatype and primitive type by name.
        resource_types: concrete (non-abstract) resource type names.
        search_params: the standard search parameters.
        compartments: compartment code -> definition.
    """

    fhir_version: str
    package_sha256: str
    types: dict[str, TypeDef] = field(repr=False)
    resource_types: frozenset[str] = field(repr=False)
    search_params: tuple[SearchParamDef, ...] = field(repr=False)
    compartments: dict[str, CompartmentDef] = field(repr=False)
    search_index: dict[str, dict[str, SearchParamDef]] = field(repr=False)

    def is_resource_type(self, name: str) -> bool:
        """True if ``name`` is a concrete R4 resource type (https://hl7.org/fhir/R4/resourcelist.html)."""
        return name in self.resource_types

    def search_params_for(self, resource_type: str) -> dict[str, SearchParamDef]:
        """Search parameters applicable to a resource type, by code.

        Includes the parameters defined on its bases (Resource, DomainResource:
        ``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``,
        ``_source``, ``_text``, ``_content``, ``_query``). See
        https://hl7.org/fhir/R4/searchparameter-registry.html.

        Args:
            resource_type: a resource type name (abstract ones allowed).

        Returns:
            A new dict code -> SearchParamDef.

        Raises:
            KeyError: if ``resource_type`` is not a resource type.
        """
        try:
            return dict(self.search_index[resource_type])
        except KeyError:
            raise KeyError(f"not a resource type: {resource_type!r}") from None


def _split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on its top-level ``|`` operators."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    for i, char in enumerate(expression):
        if quote is not None:
            if char == quote and expression[i - 1] != "\\":
                quote = None
        elif char in "'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return parts


def _head(branch: str) -> str:
    """The leading identifier of a FHIRPath branch, skipping opening parentheses."""
    text = branch.lstrip("( ")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]
