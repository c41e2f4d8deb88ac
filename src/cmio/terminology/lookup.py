"""``$lookup``, ``$subsumes`` and ``$translate``.

* https://hl7.org/fhir/R4/codesystem-operation-lookup.html
* https://hl7.org/fhir/R4/codesystem-operation-subsumes.html
* https://hl7.org/fhir/R4/conceptmap-operation-translate.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cmio.terminology.codesystem import CodeSystemSource, Entry
from cmio.terminology.errors import TerminologyError
from cmio.terminology.resources import TerminologyResources, split_canonical
from cmio.terminology.supplements import supplement_designations, with_supplements

__all__ = ["lookup", "subsumes", "translate"]

_TYPES = {
    "code": "valueCode",
    "Coding": "valueCoding",
    "string": "valueString",
    "integer": "valueInteger",
    "boolean": "valueBoolean",
    "dateTime": "valueDateTime",
    "decimal": "valueDecimal",
}


def _system(
    resources: TerminologyResources,
    system: str | None,
    version: str | None,
    expression: str = "system",
) -> CodeSystemSource:
    if not system:
        raise TerminologyError(400, "required", "A system is required", expression=expression)
    source = resources.code_system(system, version)
    if source is None:
        label = f"{system}|{version}" if version else system
        raise TerminologyError(
            404,
            "not-found",
            f"A definition for CodeSystem '{label}' could not be found",
            detail="not-found",
            expression=expression,
        )
    return source


def lookup(
    resources: TerminologyResources,
    system: str | None,
    code: str | None,
    version: str | None = None,
    properties: list[str] | None = None,
    display_language: str | None = None,
    supplements: Sequence[str] = (),
) -> dict[str, Any]:
    """``$lookup``: name, version, display, definition, designations and properties
    (``parent``/``child`` included) of one code.

    Args:
        resources: where the code system comes from.
        system: the code system URL (may carry ``|version``).
        code: the code.
        version: the code system version.
        properties: property codes wanted (``*`` or None: all).
        display_language: preferred display language.
        supplements: ``useSupplement``: supplements whose designations and properties
            are added (see :mod:`cmio.terminology.supplements`).

    Raises:
        TerminologyError: unknown system or code, or an unknown supplement.
    """
    if not code:
        raise TerminologyError(400, "required", "A code is required", expression="code")
    resources, used = with_supplements(resources, list(supplements))
    system, pinned = split_canonical(system) if system else (None, None)
    source = _system(resources, system, version or pinned)
    entry = source.get(code)
    if entry is None:
        raise TerminologyError(
            404,
            "not-found",
            f"Unknown code '{code}' in the CodeSystem '{source.url}'"
            + (f" version '{source.version}'" if source.version else ""),
            detail="invalid-code",
            expression="code",
        )
    wanted = None if not properties or "*" in properties else set(properties)
    out: list[dict[str, Any]] = [
        {"name": "name", "valueString": str(source.resource.get("name") or source.url)}
    ]
    if source.version:
        out.append({"name": "version", "valueString": source.version})
    out += [{"name": "code", "valueCode": entry.code}, {"name": "system", "valueUri": source.url}]
    if entry.display is not None:
        out.append({"name": "display", "valueString": entry.display})
    if entry.definition is not None:
        out.append({"name": "definition", "valueString": entry.definition})
    out.append({"name": "abstract", "valueBoolean": entry.abstract})
    out += _designations(source, entry, supplement_designations(resources, used, entry.code))

    def prop(code_: str, key: str, value: Any, description: str | None = None) -> None:
        if wanted is not None and code_ not in wanted:
            return
        parts = [{"name": "code", "valueCode": code_}, {"name": "value", key: value}]
        if description:
            parts.insert(1, {"name": "description", "valueString": description})
        out.append({"name": "property", "part": parts})

    for code_, key, value in entry.properties:
        if code_ not in ("parent", "child", "inactive"):
            prop(code_, key, value)
    prop("inactive", "valueBoolean", entry.inactive)
    for parent in entry.parents:
        above = source.get(parent)
        prop("parent", "valueCode", parent, above.display if above else None)
    for child in source.children(entry.code):
        below = source.get(child)
        prop("child", "valueCode", child, below.display if below else None)
    out += [{"name": "used-supplement", "valueCanonical": u} for u in used]
    return {"resourceType": "Parameters", "parameter": out}


_PREFERRED = {
    "system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
    "code": "preferredForLanguage",
    "display": "Preferred For Language",
}


def _designations(
    source: CodeSystemSource, entry: Entry, supplemented: list[tuple[dict[str, Any], str]]
) -> list[dict[str, Any]]:
    """The ``designation`` outputs: the concept's, each supplement's with its ``source``
    (R5, https://hl7.org/fhir/R5/codesystem-operation-lookup.html), and the display itself
    in the code system's ``language`` (preferred for that language) when it states one."""
    designations = list(entry.designations)
    language = source.resource.get("language")
    if isinstance(language, str) and entry.display is not None:
        own = {"language": language, "use": _PREFERRED, "value": entry.display}
        if not any(
            d.get("language") == language and d.get("value") == entry.display for d in designations
        ):
            designations.append(own)
    out = []
    for designation in designations:
        parts: list[dict[str, Any]] = []
        if designation.get("language"):
            parts.append({"name": "language", "valueCode": designation["language"]})
        if isinstance(designation.get("use"), dict):
            parts.append({"name": "use", "valueCoding": designation["use"]})
        origin = next((c for d, c in supplemented if d == designation), None)
        if origin is not None:
            parts.append({"name": "source", "valueCanonical": origin})
        parts.append({"name": "value", "valueString": designation.get("value")})
        out.append({"name": "designation", "part": parts})
    return out


def subsumes(
    resources: TerminologyResources,
    system: str | None,
    code_a: str | None,
    code_b: str | None,
    version: str | None = None,
) -> dict[str, Any]:
    """``$subsumes``: ``equivalent``, ``subsumes``, ``subsumed-by`` or ``not-subsumed``.

    Raises:
        TerminologyError: unknown system or codes.
    """
    source = _system(resources, system, version)
    found = []
    for name, code in (("codeA", code_a), ("codeB", code_b)):
        entry = source.get(code) if code else None
        if entry is None:
            raise TerminologyError(
                404 if code else 400,
                "not-found" if code else "required",
                f"Unknown code '{code}' in the CodeSystem '{source.url}'",
                expression=name,
            )
        found.append(entry.code)
    a, b = found
    if a == b:
        outcome = "equivalent"
    elif b in source.descendants(a):
        outcome = "subsumes"
    elif a in source.descendants(b):
        outcome = "subsumed-by"
    else:
        outcome = "not-subsumed"
    return {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": outcome}]}


def _relationship(target: dict[str, Any]) -> str:
    found = target.get("equivalence") or target.get("relationship") or "equivalent"
    return {
        "source-is-narrower-than-target": "wider",
        "source-is-broader-than-target": "narrower",
        "related-to": "relatedto",
        "not-related-to": "unmatched",
    }.get(found, found)


def translate(
    resources: TerminologyResources,
    system: str | None,
    code: str | None,
    *,
    url: str | None = None,
    source_vs: str | None = None,
    target_vs: str | None = None,
    target_system: str | None = None,
    reverse: bool = False,
    from_target: bool = False,
) -> dict[str, Any]:
    """``$translate``: the mapped codes of the ConceptMaps that apply, with their equivalence.

    ``reverse`` (R4) maps ``system#code`` from a map's target side to its source side; so
    does ``from_target`` (R5 ``targetCode``/``targetCoding``,
    https://hl7.org/fhir/R5/conceptmap-operation-translate.html), whose matches give the
    target as ``concept`` and the source code that maps to it as ``source``;
    ``target_system`` then names the source side's system.

    Raises:
        TerminologyError: no ConceptMap applies or the input is incomplete.
    """
    if not code or not system:
        raise TerminologyError(
            400, "required", "$translate needs a system and code", expression="code"
        )
    maps: list[dict[str, Any]] = []
    if url:
        found = resources.find("ConceptMap", url)
        if found is None:
            raise TerminologyError(
                404, "not-found", f"ConceptMap '{url}' could not be found", expression="url"
            )
        maps.append(found)
    else:
        maps = _candidate_maps(resources, source_vs, target_vs)
    matches: list[dict[str, Any]] = []
    for cmap in maps:
        label = (
            f"{cmap.get('url')}|{cmap['version']}" if cmap.get("version") else str(cmap.get("url"))
        )
        for group in cmap.get("group") or ():
            src, tgt = group.get("source"), group.get("target")
            if reverse or from_target:
                src, tgt = tgt, src
            if src != system or (target_system and tgt != target_system):
                continue
            for element in group.get("element") or ():
                for target in element.get("target") or ():
                    pair = (element.get("code"), target.get("code"))
                    here, there = (pair[1], pair[0]) if reverse or from_target else pair
                    if here != code or there is None:
                        continue
                    coding: dict[str, Any] = {"system": tgt, "code": there}
                    shown = element.get("display") if reverse else target.get("display")
                    if shown and not from_target:
                        coding["display"] = shown
                    if from_target:
                        matches.append(_reverse_match(target, src, code, coding, label))
                        continue
                    matches.append(
                        {
                            "name": "match",
                            "part": [
                                {"name": "equivalence", "valueCode": _relationship(target)},
                                {"name": "concept", "valueCoding": coding},
                                {"name": "originMap", "valueCanonical": label},
                            ],
                        }
                    )
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(matches)}]
    if not matches:
        out.append({"name": "message", "valueString": f"No translation found for {system}#{code}"})
    return {"resourceType": "Parameters", "parameter": out + matches}


def _reverse_match(
    target: dict[str, Any], system: str, code: str, source: dict[str, Any], label: str
) -> dict[str, Any]:
    """A match of an R5 reverse translation: the target given and the source mapped to it."""
    return {
        "name": "match",
        "part": [
            {"name": "equivalence", "valueCode": _relationship(target)},
            {"name": "concept", "valueCoding": {"system": system, "code": code}},
            {"name": "source", "valueCoding": source},
            {"name": "originMap", "valueCanonical": label},
        ],
    }


def _candidate_maps(
    resources: TerminologyResources, source_vs: str | None, target_vs: str | None
) -> list[dict[str, Any]]:
    maps = [r for (rtype, _), rs in resources.overlay.items() if rtype == "ConceptMap" for r in rs]
    if resources.repository is not None:
        from cmio.store.base import SearchQuery

        page = resources.repository.search(SearchQuery("ConceptMap", count=1000, total=False))
        maps += [orjson.loads(s.data) for s in page.resources if s.data is not None]
    out = []
    for cmap in maps:
        src = cmap.get("sourceUri") or cmap.get("sourceCanonical") or cmap.get("sourceScopeUri")
        tgt = cmap.get("targetUri") or cmap.get("targetCanonical") or cmap.get("targetScopeUri")
        if source_vs and src and split_canonical(src)[0] != split_canonical(source_vs)[0]:
            continue
        if target_vs and tgt and split_canonical(tgt)[0] != split_canonical(target_vs)[0]:
            continue
        out.append(cmap)
    return out
