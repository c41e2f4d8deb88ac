"""The answer of ``$validate-code``: the Parameters resource built from each coding's outcome.

https://hl7.org/fhir/R4/valueset-operation-validate-code.html: ``result``, ``message``
(the issues' texts), ``code``, ``system``, ``version``, ``display``, ``inactive``,
``normalized-code``, ``status`` (R5: a concept status other than active), the CodeableConcept given, the unknown systems and the ``issues``
OperationOutcome. For a CodeableConcept one valid coding makes the result true; when none
is valid, "No valid coding was found" heads the issues unless the value set could not be
evaluated or a member coding only has a wrong display or version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.terminology.validate_types import Issue, ValidateRequest

__all__ = ["Outcome", "answer"]


@dataclass(slots=True)
class Outcome:
    """What the check of one coding found."""

    ok: bool = False
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    inactive: bool = False
    status: str | None = None  # the concept's status, when it has one
    normalized: str | None = None
    member: bool = False  # a valid code of the value set, whatever its display
    undecided: bool = False  # the value set could not be evaluated
    issues: list[Issue] = field(default_factory=list)
    unknown_systems: list[str] = field(default_factory=list)
    caused_by: list[str] = field(default_factory=list)


_REPORTED_STATUSES = frozenset({"deprecated", "withdrawn", "retired"})
"""Concept statuses reported as the ``status`` output (the standard ones other than active,
https://hl7.org/fhir/R5/codesystem-concept-properties.html#status; a code system's own
``status`` property with other values is not one)."""

_VERSION_ONLY = frozenset({"vs-invalid", "version-error"})


def answer(request: ValidateRequest, outcomes: list[Outcome]) -> dict[str, Any]:
    """The operation's Parameters resource for the outcomes of the request's codings."""
    good = [o for o in outcomes if o.ok]
    found = [o for o in outcomes if o.member]  # only a display is wrong
    chosen = good[0] if good else (found + outcomes or [Outcome()])[0]
    display_only = request.kind == "CodeableConcept" and not good and bool(found)
    issues = [i for o in outcomes for i in o.issues]
    if request.kind == "CodeableConcept" and good:  # another coding is valid: absence is
        issues = [  # information, an unknown code stays an error (and fails the concept)
            Issue("information", i.code, "this-code-not-in-vs", i.text, i.path)
            if i.detail == "not-in-vs"
            else i
            for i in issues
            if i.severity != "error" or i.detail in ("not-in-vs", "invalid-code")
        ]
    # a coding found in the value set but in another version than the value set's: reported
    # as that coding's result, not as "no valid coding"
    version_only = request.kind == "CodeableConcept" and any(
        o.version is not None and any(i.detail in _VERSION_ONLY for i in o.issues) for o in outcomes
    )
    undecided = any(o.caused_by or o.undecided for o in outcomes)  # no value set evaluation
    if (
        request.kind == "CodeableConcept"
        and not good
        and not version_only
        and not undecided
        and not display_only
        and request.valueset is not None
    ):
        vs = request.valueset
        label = f"{vs.get('url')}|{vs.get('version')}" if vs.get("version") else str(vs.get("url"))
        issues = [
            Issue("information", i.code, "this-code-not-in-vs", i.text, i.path)
            if i.detail == "not-in-vs"
            else i
            for i in issues
        ]
        issues.insert(
            0,
            Issue(
                "error",
                "code-invalid",
                "not-in-vs",
                f"No valid coding was found for the value set '{label}'",
                None,
            ),
        )
    if display_only:  # the other codings' absence is information, as with a valid one
        issues = [
            Issue("information", i.code, "this-code-not-in-vs", i.text, i.path)
            if i.detail == "not-in-vs"
            else i
            for i in issues
        ]
    params: list[dict[str, Any]] = []
    if request.kind != "CodeableConcept" or good or version_only or display_only:
        if chosen.code is not None:
            params.append({"name": "code", "valueCode": chosen.code})
        if chosen.system is not None:
            params.append({"name": "system", "valueUri": chosen.system})
        if chosen.version is not None:
            params.append({"name": "version", "valueString": chosen.version})
        if chosen.display is not None:
            params.append({"name": "display", "valueString": chosen.display})
    if chosen.inactive:
        params.append({"name": "inactive", "valueBoolean": True})
    if chosen.status in _REPORTED_STATUSES and chosen.ok:
        params.append({"name": "status", "valueCode": chosen.status})
    if chosen.normalized is not None and chosen.ok:
        params.append({"name": "normalized-code", "valueCode": chosen.normalized})
    if request.codeable_concept is not None:
        params.append({"name": "codeableConcept", "valueCodeableConcept": request.codeable_concept})
    unknown = [u for o in outcomes for u in o.unknown_systems]
    for system in unknown:
        params.append({"name": "x-unknown-system", "valueCanonical": system})
    for canonical in (u for o in outcomes for u in o.caused_by):
        params.append({"name": "x-caused-by-unknown-system", "valueCanonical": canonical})
    errors = [i.text for i in issues if i.severity in ("error", "warning") and not i.quiet]
    messages = errors or [i.text for i in issues if not i.quiet]
    if messages:
        params.append({"name": "message", "valueString": "; ".join(sorted(set(messages)))})
    unknown_code = any(i.detail == "invalid-code" and i.severity == "error" for i in issues)
    params.append({"name": "result", "valueBoolean": bool(good) and not unknown_code})
    if issues:
        params.append(
            {
                "name": "issues",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [i.to_json() for i in issues],
                },
            }
        )
    return {"resourceType": "Parameters", "parameter": params}
