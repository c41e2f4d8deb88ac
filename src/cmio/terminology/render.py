"""Rows of an expansion: display by language, designations, flags.

https://hl7.org/fhir/R4/valueset-operation-expand.html (``displayLanguage``,
``includeDesignations``, R5 ``designation``) and
https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.expansion.contains.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cmio.terminology.expansion import Member

if TYPE_CHECKING:
    from cmio.terminology.codesystem import Entry
    from cmio.terminology.resources import TerminologyResources
    from cmio.terminology.service import ExpandRequest

__all__ = [
    "CONTAINS_PROPERTY",
    "EXPANSION_PROPERTY",
    "display_for",
    "expansion_properties",
    "properties_of",
    "render_member",
    "stated_properties",
    "unclosed",
]

_UNCLOSED = "http://hl7.org/fhir/StructureDefinition/valueset-unclosed"


def unclosed(used: list[tuple[str, str]], resources: TerminologyResources) -> list[dict[str, Any]]:
    """``valueset-unclosed`` when a code system used is a fragment: the expansion may lack
    codes that exist (https://hl7.org/fhir/R4/extension-valueset-unclosed.html,
    https://hl7.org/fhir/R4/codesystem-content-mode.html#fragment)."""
    for name, canonical in used:
        if name != "used-codesystem":
            continue
        url, _, version = canonical.partition("|")
        source = resources.code_system(url, version or None)
        if source is not None and source.resource.get("content") == "fragment":
            return [{"url": _UNCLOSED, "valueBoolean": True}]
    return []


def _wanted(designation: dict[str, Any], tokens: list[str]) -> bool:
    """Whether a designation matches a ``designation`` token (language or use)."""
    for token in tokens:
        system, _, code = token.rpartition("|")
        if system == "urn:ietf:bcp:47":
            language = str(designation.get("language") or "").lower()
            if language == code.lower():
                return True
        else:
            use = designation.get("use") or {}
            if use.get("code") == code and (not system or use.get("system") == system):
                return True
    return False


def display_for(
    member_display: str | None, entry: Any, language: str | None, own: Any = None
) -> str | None:
    """The display to show: the compose's, else the code system's when ``language`` is
    the code system's own language (``own``), else a designation in ``language``, else
    the code system's."""
    if member_display:
        return member_display
    if entry is None:
        return None
    if language:
        base = language.split(",")[0].split(";")[0].strip().lower()
        if isinstance(own, str) and own.lower() == base and entry.display is not None:
            return str(entry.display)
        for designation in entry.designations:
            lang = str(designation.get("language", "")).lower()
            if lang and (lang == base or lang.split("-")[0] == base.split("-")[0]):
                return str(designation.get("value"))
    return str(entry.display) if entry.display is not None else None


_PREFERRED = {
    "system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
    "code": "preferredForLanguage",
    "display": "Preferred For Language",
}


EXPANSION_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property"
)
"""R5 ``ValueSet.expansion.property`` in R4 (https://hl7.org/fhir/versions.html#extensions)."""
CONTAINS_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property"
)
"""R5 ``ValueSet.expansion.contains.property`` in R4."""


_STANDARD = "http://hl7.org/fhir/concept-properties#"
"""The URIs of the standard concept properties (https://hl7.org/fhir/R5/codesystem-concept-properties.html)."""
_STANDARD_CODES = frozenset(
    {"definition", "status", "inactive", "notSelectable", "parent", "child", "deprecated"}
)


def expansion_properties(wanted: list[str], page: list[Member]) -> list[dict[str, Any]]:
    """The ``expansion.property`` declarations (code and the code system's URI for it) of the
    requested properties that the page's members carry, then of the properties their
    concepts state by extension (:func:`stated_properties`)
    (https://hl7.org/fhir/R5/valueset-definitions.html#ValueSet.expansion.property)."""
    found: dict[str, str | None] = {}
    stated: dict[str, str] = {}
    for member in page:
        entry = member.entry()
        if entry is None or not (wanted or member.extras or entry.extras):
            continue
        for code, _, _ in properties_of(entry, wanted) if wanted else ():
            if code not in found:
                found[code] = _property_uri(member, code) or (
                    _STANDARD + code if code in _STANDARD_CODES else None
                )
        for code, _, _ in stated_properties(member, entry):
            stated.setdefault(code, _STANDARD + ("itemWeight" if code == "weight" else code))
    declared = [(code, found[code]) for code in wanted if code in found]
    declared += [(code, uri) for code, uri in stated.items() if code not in found]
    out = []
    for code, uri in declared:
        parts: list[dict[str, Any]] = [{"url": "code", "valueCode": code}]
        if uri:
            parts.append({"url": "uri", "valueUri": uri})
        out.append({"url": EXPANSION_PROPERTY, "extension": parts})
    return out


def stated_properties(member: Member, entry: Entry | None) -> list[tuple[str, str, Any]]:
    """The standard concept properties (``label``, ``order``, ``weight``, ``status``) stated
    by extension: the value set compose's for the concept, else the code system's or a
    supplement's (:data:`cmio.terminology.codesystem.EXTENSION_PROPERTIES`)."""
    if not member.extras and (entry is None or not entry.extras):
        return []
    out = {code: (code, key, value) for code, key, value in member.extras}
    for code, key, value in entry.extras if entry is not None else ():
        out.setdefault(code, (code, key, value))
    return list(out.values())


def _property_uri(member: Member, code: str) -> str | None:
    if member.source is None:
        return None
    for declared in member.source.resource.get("property") or ():
        if isinstance(declared, dict) and declared.get("code") == code:
            uri = declared.get("uri")
            return uri if isinstance(uri, str) else None
    return None


def _only_asked(language: str | None) -> bool:
    """Whether a language list excludes every other language (``de, *; q=0``)."""
    return (
        language is not None
        and re.search(r"\*\s*;\s*q\s*=\s*0(\.0*)?\s*(,|$)", language) is not None
    )


def _is_asked(own: Any, language: str | None) -> bool:
    """Whether the code system's own language is the first one asked for."""
    if not isinstance(own, str) or language is None:
        return False
    first = language.split(",")[0].split(";")[0].strip().lower()
    return own.lower() == first or own.lower().split("-")[0] == first.split("-")[0]


def _row_extensions(member: Member, entry: Entry | None) -> list[dict[str, Any]]:
    """The compose concept's marks (deprecated, its definition, how to show it), then how
    the code system shows the concept unless the value set says
    (https://hl7.org/fhir/extensions/StructureDefinition-rendering-style.html)."""
    out = list(member.marks)
    if entry is not None and entry.rendering:
        given = {e.get("url") for e in out}
        out += [e for e in entry.rendering if e.get("url") not in given]
    return out


def render_member(
    member: Member, request: ExpandRequest, language: str | None, versioned: bool
) -> dict[str, Any]:
    """One ``expansion.contains`` row (https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.expansion.contains)."""
    entry = member.entry()
    item: dict[str, Any] = {"system": member.system}
    if member.marks or (entry is not None and entry.rendering):
        item["extension"] = _row_extensions(member, entry)
    if versioned and member.version:
        item["version"] = member.version
    if entry is not None and entry.abstract:
        item["abstract"] = True
    if entry is not None and entry.inactive:
        item["inactive"] = True
    item["code"] = member.code
    own = member.source.resource.get("language") if member.source is not None else None
    display = display_for(member.display, entry, language, own)
    own_display = display is not None and entry is not None and display == entry.display
    only = _only_asked(language) and not _is_asked(own, language)
    if own_display and only and not member.display:
        display = None  # "de,*;q=0": no display rather than one in another language
    if display is not None:
        item["display"] = display
    if request.include_designations:
        designations = member.designations + (entry.designations if entry else [])
        original = entry.display if entry is not None else None
        moved = original is not None and display != original and not member.display
        if moved and isinstance(own, str):
            # the display came from a designation: it leaves the list, and the code
            # system's own display stays as a designation in its language
            designations = [{"language": own, "use": _PREFERRED, "value": original}] + [
                d for d in designations if d.get("value") != display
            ]
        if request.designations:
            designations = [d for d in designations if _wanted(d, request.designations)]
        if designations:
            item["designation"] = designations
    if not request.properties and not member.extras and (entry is None or not entry.extras):
        return item  # the usual row: no properties asked for or stated
    extensions = []
    shown: set[str] = set()
    if request.properties and entry is not None:
        for code, key, value in properties_of(entry, request.properties):
            parts = [{"url": "code", "valueCode": code}, {"url": "value", key: value}]
            extensions.append({"url": CONTAINS_PROPERTY, "extension": parts})
            shown.add(code)
    for code, key, value in stated_properties(member, entry):
        if code not in shown:
            parts = [{"url": "code", "valueCode": code}, {"url": "value", key: value}]
            extensions.append({"url": CONTAINS_PROPERTY, "extension": parts})
    if extensions:
        item["extension"] = item.get("extension", []) + extensions
    return item


def properties_of(entry: Entry, wanted: list[str]) -> list[tuple[str, str, Any]]:
    """The ``(code, valueX key, value)`` of ``entry``'s properties named in ``wanted``: the
    code system's own, and the concept's ``definition`` (a standard concept property,
    https://hl7.org/fhir/R5/codesystem-concept-properties.html)."""
    found = [p for p in entry.properties if p[0] in wanted]
    if "definition" in wanted and entry.definition and all(p[0] != "definition" for p in found):
        found.append(("definition", "valueString", entry.definition))
    return found
