"""The inputs and issues of ``$validate-code``
(https://hl7.org/fhir/R4/valueset-operation-validate-code.html): a code, Coding or
CodeableConcept with its element path, the request's parameters, and one issue of the
answer's OperationOutcome with its ``tx-issue-type`` detail code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.terminology.errors import TX_ISSUE_TYPE
from cmio.terminology.expansion import ExpandOptions

__all__ = ["CodingInput", "Issue", "ValidateRequest"]


@dataclass(frozen=True, slots=True)
class CodingInput:
    """One coding to check.

    Attributes:
        system: code system URL (None: inferred from the value set when possible).
        code: the code.
        version: code system version.
        display: the display to check.
        path: element path of the coding (``code`` for a bare code, ``Coding``,
            ``CodeableConcept.coding[0]``).
    """

    system: str | None
    code: str
    version: str | None = None
    display: str | None = None
    path: str = "Coding"


@dataclass(slots=True)
class ValidateRequest:
    """What to validate and against what.

    Attributes:
        codings: one (code / Coding) or several (CodeableConcept) codings.
        valueset: the value set, None for CodeSystem ``$validate-code``.
        kind: ``code``, ``Coding`` or ``CodeableConcept``.
        codeable_concept: the CodeableConcept given, echoed in the answer.
        lenient_display: a wrong display is a warning, not an error.
        abstract: abstract (not selectable) codes are acceptable.
        display_language: language of displays.
        options: expansion options (version pinning, activeOnly).
        supplements: ``useSupplement``: supplements to apply besides the value set's own.
        membership_only: ``valueset-membership-only``: only membership is checked (no unknown
            code or display issues).
    """

    codings: list[CodingInput]
    valueset: dict[str, Any] | None = None
    kind: str = "Coding"
    codeable_concept: dict[str, Any] | None = None
    lenient_display: bool = False
    abstract: bool = True
    display_language: str | None = None
    options: ExpandOptions = field(default_factory=ExpandOptions)
    supplements: list[str] = field(default_factory=list)
    membership_only: bool = False


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue of a validation (``quiet``: left out of the answer's
    ``message``, as status references, case notes and deprecation marks are)."""

    severity: str
    code: str
    detail: str
    text: str
    path: str | None
    quiet: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``OperationOutcome.issue`` element."""
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "details": {
                "coding": [{"system": TX_ISSUE_TYPE, "code": self.detail}],
                "text": self.text,
            },
        }
        if self.path:
            issue["location"] = [self.path]
            issue["expression"] = [self.path]
        return issue
