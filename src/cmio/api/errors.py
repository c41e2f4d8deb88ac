"""FHIR errors and their OperationOutcome form (https://hl7.org/fhir/R4/operationoutcome.html).

Every failure in the router is raised as :class:`FhirError` and turned into an
OperationOutcome response in exactly one place (``FhirRouter.handle``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FhirError", "OutcomeIssue", "operation_outcome"]


@dataclass(frozen=True, slots=True)
class OutcomeIssue:
    """One ``OperationOutcome.issue``."""

    severity: str
    code: str
    diagnostics: str
    expression: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Render as an ``OperationOutcome.issue`` element."""
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    """An error with an HTTP status and one or more OperationOutcome issues."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        *,
        expression: str | None = None,
        issues: Sequence[OutcomeIssue] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues: list[OutcomeIssue] = (
            list(issues) if issues else [OutcomeIssue("error", code, diagnostics, expression)]
        )
        self.headers = list(headers)

    def outcome(self) -> dict[str, Any]:
        """The OperationOutcome resource for this error."""
        return operation_outcome(self.issues)


def operation_outcome(issues: Iterable[OutcomeIssue]) -> dict[str, Any]:
    """Build an OperationOutcome resource from issues."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}
