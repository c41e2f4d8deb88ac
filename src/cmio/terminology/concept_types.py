"""Value types of the concept store: systems, concepts, designations.

They mirror the parts of a FHIR CodeSystem a terminology service answers from
(https://hl7.org/fhir/R4/codesystem.html#resource): ``concept.code``,
``display``, ``definition``, ``designation``, ``property`` and the is-a
hierarchy (https://hl7.org/fhir/R4/codesystem.html#hierarchy).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

__all__ = [
    "Concept",
    "Designation",
    "PropertyValue",
    "SystemInfo",
    "decode_blob",
    "encode_blob",
    "property_text",
]

PropertyValue = str | int | float | bool
"""A concept property value (code, string, integer, decimal, boolean, dateTime as text)."""


@dataclass(frozen=True, slots=True)
class Designation:
    """An additional representation of a concept (https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.concept.designation)."""

    value: str
    language: str | None = None
    use_system: str | None = None
    use_code: str | None = None


@dataclass(frozen=True, slots=True)
class Concept:
    """One concept of a code system (https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.concept).

    Attributes:
        parents: direct is-a parents (codes of the same system).
        properties: (property code, value) pairs; a code may repeat.
    """

    code: str
    display: str | None = None
    definition: str | None = None
    active: bool = True
    parents: tuple[str, ...] = ()
    properties: tuple[tuple[str, PropertyValue], ...] = ()
    designations: tuple[Designation, ...] = ()


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """A code system version held by the store (https://hl7.org/fhir/R4/codesystem.html#versioning).

    Attributes:
        properties: (code, FHIR type, description) of the properties concepts carry
            (https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.property).
    """

    url: str
    version: str | None
    name: str | None = None
    title: str | None = None
    count: int = 0
    properties: tuple[tuple[str, str, str | None], ...] = ()
    hierarchy_meaning: str | None = "is-a"


def property_text(value: PropertyValue) -> str:
    """The text a property value is indexed and compared as (``true``/``false``, decimals)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_blob(concept: Concept) -> bytes | None:
    """Compact JSON of a concept's parents, properties and designations (None when all empty)."""
    if not (concept.parents or concept.properties or concept.designations):
        return None
    return orjson.dumps(
        [
            list(concept.parents),
            [list(p) for p in concept.properties],
            [[d.value, d.language, d.use_system, d.use_code] for d in concept.designations],
        ]
    )


def decode_blob(
    blob: bytes | None,
) -> tuple[tuple[str, ...], tuple[tuple[str, PropertyValue], ...], tuple[Designation, ...]]:
    """Inverse of :func:`encode_blob`."""
    if blob is None:
        return (), (), ()
    parents, properties, designations = orjson.loads(blob)
    return (
        tuple(parents),
        tuple((p[0], p[1]) for p in properties),
        tuple(Designation(d[0], d[1], d[2], d[3]) for d in designations),
    )
