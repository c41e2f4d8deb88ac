"""Status issues of ``$validate-code``: inactive, deprecated, draft and case-folded codes.

A valid code may still deserve a word of caution
(https://hl7.org/fhir/R4/valueset-operation-validate-code.html, ``issues``): an inactive
concept (``code-comment`` warning, and an error when the value set admits active codes
only, https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.compose.inactive), a
concept the value set marks deprecated (the ``valueset-deprecated`` or
``structuredefinition-standards-status`` extension on the compose concept), code systems
and value sets that are draft, experimental, deprecated or withdrawn (``status-check``
information) and a code given in another case than the case-insensitive code system's
(``code-rule`` information, with the ``normalized-code``).
"""

from __future__ import annotations

from typing import Any

from cmio.terminology.codesystem import Entry
from cmio.terminology.validate_types import Issue

__all__ = [
    "case_issue",
    "deprecated_in_valueset",
    "deprecated_issues",
    "excludes_inactive",
    "inactive_issue",
    "not_active_issue",
    "reference_issues",
]

_DEPRECATED = (
    "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status",
)


def inactive_issue(entry: Entry, path: str) -> Issue:
    """The warning that an inactive concept's use should be reviewed (``path``: the whole
    coding, ``Coding`` or ``CodeableConcept.coding[i]``)."""
    status = entry.status if entry.status not in (None, "inactive") else None
    shown = f"{status} and inactive" if status else "inactive"
    text = f"The concept '{entry.code}' has a status of {shown} and its use should be reviewed"
    return Issue("warning", "business-rule", "code-comment", text, path)


def deprecated_issues(entry: Entry, path: str) -> list[Issue]:
    """The warning that an active but deprecated concept's use should be reviewed (status
    ``deprecated``: https://hl7.org/fhir/R5/codesystem-concept-properties.html#status); none
    for other concepts."""
    if entry.inactive or entry.status != "deprecated":
        return []
    text = f"The concept '{entry.code}' is deprecated and its use should be reviewed"
    return [Issue("warning", "business-rule", "code-comment", text, path)]


def not_active_issue(entry: Entry, path: str) -> Issue:
    """The error for an inactive concept where the value set admits active codes only."""
    text = f"The concept '{entry.code}' is valid but is not active"
    return Issue("error", "business-rule", "code-rule", text, path)


def excludes_inactive(valueset: dict[str, Any] | None, active_only: bool) -> bool:
    """Whether inactive codes are left out (``activeOnly``, or ``compose.inactive`` false)."""
    compose = (valueset or {}).get("compose") or {}
    return active_only or compose.get("inactive") is False


def case_issue(given: str, entry: Entry, system_label: str, path: str) -> Issue:
    """The information that ``given`` matched ``entry`` only by ignoring case."""
    text = (
        f"The code '{given}' differs from the correct code '{entry.code}' by case. Although "
        f"the code system '{system_label}' is case insensitive, implementers are strongly "
        "encouraged to use the correct case anyway"
    )
    return Issue("information", "business-rule", "code-rule", text, path, quiet=True)


def deprecated_in_valueset(
    valueset: dict[str, Any] | None, system: str, code: str, vs_label: str | None, path: str
) -> Issue | None:
    """The warning for a code the value set's own compose marks deprecated, else None."""
    for include in ((valueset or {}).get("compose") or {}).get("include") or ():
        if not isinstance(include, dict) or include.get("system") != system:
            continue
        for concept in include.get("concept") or ():
            if not isinstance(concept, dict) or concept.get("code") != code:
                continue
            if any(_deprecation(e) for e in concept.get("extension") or ()):
                text = (
                    f"The presence of the concept '{code}' in the system '{system}' in the value "
                    f"set {vs_label} is marked with a status of deprecated and its use should be "
                    "reviewed"
                )
                return Issue("warning", "business-rule", "code-comment", text, path, quiet=True)
    return None


def _deprecation(extension: Any) -> bool:
    if not isinstance(extension, dict) or extension.get("url") not in _DEPRECATED:
        return False
    value = extension.get("valueCode", extension.get("valueBoolean"))
    return value in ("true", True, "deprecated")


def reference_issues(warnings: list[dict[str, Any]], used: list[tuple[str, str]]) -> list[Issue]:
    """``status-check`` information for each ``warning-<status>`` expansion parameter
    (:func:`cmio.terminology.status_warnings.status_warnings`): "Reference to draft
    CodeSystem url|version"."""
    systems = {canonical for name, canonical in used if name == "used-codesystem"}
    out = []
    for warning in warnings:
        status = str(warning["name"]).removeprefix("warning-")
        canonical = str(warning["valueUri"])
        kind = "CodeSystem" if canonical in systems else "ValueSet"
        text = f"Reference to {status} {kind} {canonical}"
        out.append(Issue("information", "business-rule", "status-check", text, None, quiet=True))
    return out
