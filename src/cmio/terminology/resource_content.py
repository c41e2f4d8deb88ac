"""FHIR CodeSystem resources as concept store content.

Turns a CodeSystem (https://hl7.org/fhir/R4/codesystem.html) into a
:class:`~cmio.terminology.concept_types.SystemInfo` and its concepts: nested ``concept``
elements and the ``parent``/``subsumedBy``/``child`` properties give the is-a
hierarchy (https://hl7.org/fhir/R4/codesystem.html#hierarchy); ``inactive`` and
``status`` (https://hl7.org/fhir/R4/codesystem-concept-properties.html) decide
whether a concept is active; designations and the other properties are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cmio.terminology.concept_types import Concept, Designation, PropertyValue, SystemInfo

__all__ = ["INACTIVE_STATUSES", "codesystem_to_concepts", "property_value"]

INACTIVE_STATUSES = frozenset({"retired", "inactive"})
"""Values of the ``status`` concept property that make a concept inactive."""

_PARENT_PROPERTIES = frozenset({"parent", "subsumedBy"})


def property_value(prop: Mapping[str, Any]) -> PropertyValue | None:
    """The ``value[x]`` of a concept property; a Coding value as its code.

    See https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.concept.property.value_x_.
    """
    for key, value in prop.items():
        if not key.startswith("value"):
            continue
        if key == "valueCoding" and isinstance(value, Mapping):
            code = value.get("code")
            return str(code) if code is not None else None
        if isinstance(value, str | int | float | bool):
            return value
    return None


def _walk(
    concepts: list[Any],
    parent: str | None,
    out: dict[str, dict[str, Any]],
    extra: list[tuple[str, str]],
) -> None:
    for item in concepts:
        if not isinstance(item, Mapping) or not isinstance(item.get("code"), str):
            continue
        code = item["code"]
        entry = out.get(code)
        if entry is None:
            entry = out[code] = {"item": item, "parents": []}
        if parent is not None and parent not in entry["parents"]:
            entry["parents"].append(parent)
        for prop in item.get("property", ()):
            value = property_value(prop)
            if not isinstance(value, str):
                continue
            if prop.get("code") in _PARENT_PROPERTIES and value not in entry["parents"]:
                entry["parents"].append(value)
            elif prop.get("code") == "child":
                extra.append((value, code))
        _walk(item.get("concept", []), code, out, extra)


def _concept(code: str, item: Mapping[str, Any], parents: list[str]) -> Concept:
    properties: list[tuple[str, PropertyValue]] = []
    active = True
    for prop in item.get("property", ()):
        name, value = prop.get("code"), property_value(prop)
        if not isinstance(name, str) or value is None:
            continue
        if name in _PARENT_PROPERTIES or name == "child":
            continue
        properties.append((name, value))
        if (name == "inactive" and value is True) or (
            name == "status" and value in INACTIVE_STATUSES
        ):
            active = False
    designations = tuple(
        Designation(
            value=str(d["value"]),
            language=d.get("language"),
            use_system=(d.get("use") or {}).get("system"),
            use_code=(d.get("use") or {}).get("code"),
        )
        for d in item.get("designation", ())
        if isinstance(d, Mapping) and d.get("value") is not None
    )
    return Concept(
        code=code,
        display=item.get("display"),
        definition=item.get("definition"),
        active=active,
        parents=tuple(parents),
        properties=tuple(properties),
        designations=designations,
    )


def codesystem_to_concepts(resource: Mapping[str, Any]) -> tuple[SystemInfo, Iterator[Concept]]:
    """Split a CodeSystem resource into its system description and concepts.

    Args:
        resource: a CodeSystem as parsed JSON (R4; R5 content is read the same way).

    Returns:
        The :class:`SystemInfo` (``count`` = number of distinct codes) and an iterator
        over the concepts, parents first where the nesting allows.

    Raises:
        ValueError: the resource is not a CodeSystem or has no ``url``.
    """
    if resource.get("resourceType") != "CodeSystem":
        raise ValueError("CodeSystem.resourceType: expected a CodeSystem")
    url = resource.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError("CodeSystem.url: a code system needs a canonical url")
    entries: dict[str, dict[str, Any]] = {}
    extra: list[tuple[str, str]] = []
    _walk(resource.get("concept", []), None, entries, extra)
    for child, parent in extra:
        if child in entries and parent not in entries[child]["parents"]:
            entries[child]["parents"].append(parent)
    properties = tuple(
        (str(p["code"]), str(p.get("type", "string")), p.get("description"))
        for p in resource.get("property", ())
        if isinstance(p, Mapping) and p.get("code")
    )
    info = SystemInfo(
        url=url,
        version=resource.get("version"),
        name=resource.get("name"),
        title=resource.get("title"),
        count=len(entries),
        properties=properties,
        hierarchy_meaning=resource.get("hierarchyMeaning", "is-a"),
    )
    concepts = (_concept(code, e["item"], e["parents"]) for code, e in entries.items())
    return info, concepts
