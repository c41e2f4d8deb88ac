"""Rows of an expansion: display by language, designations, flags.

https://hl7.org/fhir/R4/valueset-operation-expand.html (``displayLanguage``,
``includeDesignations``, R5 ``designation``) and
https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.expansion.contains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmio.terminology.expansion import Member

if TYPE_CHECKING:
    from cmio.terminology.service import ExpandRequest

__all__ = ["display_for", "render_member"]


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


def render_member(
    member: Member, request: ExpandRequest, language: str | None, versioned: bool
) -> dict[str, Any]:
    """One ``expansion.contains`` row (https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.expansion.contains)."""
    entry = member.entry()
    item: dict[str, Any] = {"system": member.system}
    if versioned and member.version:
        item["version"] = member.version
    if entry is not None and entry.abstract:
        item["abstract"] = True
    if entry is not None and entry.inactive:
        item["inactive"] = True
    item["code"] = member.code
    own = member.source.resource.get("language") if member.source is not None else None
    display = display_for(member.display, entry, language, own)
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
    if request.include_definition and entry is not None and entry.definition:
        item["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/valueset-concept-definition",
                "valueString": entry.definition,
            }
        ]
    return item
