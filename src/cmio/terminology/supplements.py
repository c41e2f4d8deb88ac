"""CodeSystem supplements: extra designations and properties for another code system.

A supplement is a CodeSystem with ``content = supplement`` whose ``supplements``
names the code system it adds to (https://hl7.org/fhir/R4/codesystem.html#supplements,
https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.supplements). It is used
when a value set asks for it with the ``valueset-supplement`` extension
(https://hl7.org/fhir/R4/extension-valueset-supplement.html) or a caller names it with
the ``useSupplement`` parameter (R5 ``$expand``, ``$validate-code``, ``$lookup``); a
supplement asked for but not known is an error. A supplement is never a code system of
its own: it cannot be the system of a Coding.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from cmio.terminology.errors import TerminologyError
from cmio.terminology.resources import TerminologyResources

__all__ = [
    "SUPPLEMENT_EXTENSION",
    "is_supplement",
    "requested_supplements",
    "supplement_designations",
    "with_supplements",
]

SUPPLEMENT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/valueset-supplement"
"""The ValueSet extension naming a supplement the value set needs."""


def is_supplement(resource: dict[str, Any] | None) -> bool:
    """Whether a CodeSystem resource is a supplement (``content = supplement``)."""
    return resource is not None and resource.get("content") == "supplement"


def requested_supplements(
    valueset: dict[str, Any] | None, parameters: Iterable[str] = ()
) -> list[str]:
    """The supplements a call needs: the value set's extensions, then ``useSupplement``s."""
    wanted: list[str] = []
    for extension in (valueset or {}).get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == SUPPLEMENT_EXTENSION:
            value = extension.get("valueCanonical") or extension.get("valueUri")
            if isinstance(value, str):
                wanted.append(value)
    wanted += [str(p) for p in parameters]
    return list(dict.fromkeys(wanted))


def with_supplements(
    resources: TerminologyResources, canonicals: Sequence[str]
) -> tuple[TerminologyResources, list[str]]:
    """A view of ``resources`` in which the supplemented code systems carry the
    supplements' designations and properties, and the ``url|version`` of each used.

    Raises:
        TerminologyError: 404 naming a supplement that is not known (or is not a
            supplement).
    """
    if not canonicals:
        return resources, []
    merged: dict[int, dict[str, Any]] = {}
    used: list[str] = []
    for canonical in canonicals:
        supplement = resources.find("CodeSystem", canonical)
        if not is_supplement(supplement):
            raise TerminologyError(
                404,
                "not-found",
                f"Required supplement not found: {canonical}",
                detail="not-found",
            )
        assert supplement is not None
        url, version = supplement.get("url"), supplement.get("version")
        used.append(f"{url}|{version}" if version else str(url))
        target = supplement.get("supplements")
        base = resources.find("CodeSystem", target) if isinstance(target, str) else None
        if base is None or base.get("content") == "not-present":
            continue  # nothing held here to add to (its concepts are in the concept store)
        key = id(base)
        if key not in merged:
            merged[key] = _copy_base(base)
        _merge(merged[key], supplement)
    return resources.with_overlay(list(merged.values()), first=True), used


def _copy_base(base: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if k not in ("concept", "text", "property")}
    out["concept"] = copy.deepcopy(base.get("concept") or [])
    out["property"] = list(base.get("property") or [])
    return out


def _merge(base: dict[str, Any], supplement: dict[str, Any]) -> None:
    concepts: dict[str, dict[str, Any]] = {}
    stack = list(base["concept"])
    while stack:
        concept = stack.pop()
        if isinstance(concept, dict) and isinstance(concept.get("code"), str):
            concepts.setdefault(concept["code"], concept)
            stack.extend(concept.get("concept") or ())
    declared = {p.get("code") for p in base.get("property") or () if isinstance(p, dict)}
    for prop in supplement.get("property") or ():
        if isinstance(prop, dict) and prop.get("code") not in declared:
            base.setdefault("property", []).append(prop)
    for added in _walk(supplement.get("concept") or ()):
        target = concepts.get(added.get("code", ""))
        if target is None:
            continue  # a supplement cannot add concepts
        for name in ("designation", "property", "extension"):
            extra = [d for d in added.get(name) or () if isinstance(d, dict)]
            if extra:
                target[name] = list(target.get(name) or ()) + extra


def _walk(concepts: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for concept in concepts:
        if isinstance(concept, dict):
            yield concept
            yield from _walk(concept.get("concept") or ())


def supplement_designations(
    resources: TerminologyResources, used: Sequence[str], code: str
) -> list[tuple[dict[str, Any], str]]:
    """The designations the supplements ``used`` (``url|version``) add to ``code``, each
    with the supplement's canonical (the R5 ``$lookup`` designation ``source``)."""
    out: list[tuple[dict[str, Any], str]] = []
    for canonical in used:
        supplement = resources.find("CodeSystem", canonical)
        for concept in _walk((supplement or {}).get("concept") or ()):
            if concept.get("code") == code:
                out += [
                    (d, canonical) for d in concept.get("designation") or () if isinstance(d, dict)
                ]
    return out
