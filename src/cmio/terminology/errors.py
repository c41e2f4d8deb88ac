"""Errors of the terminology operations, with what their OperationOutcome needs."""

from __future__ import annotations

__all__ = ["TX_ISSUE_TYPE", "TerminologyError"]

TX_ISSUE_TYPE = "http://hl7.org/fhir/tools/CodeSystem/tx-issue-type"
"""Detail codes of terminology issues (``not-found``, ``invalid-code``, ``not-in-vs`` ...)."""


class TerminologyError(Exception):
    """A terminology operation cannot be carried out.

    Attributes:
        status: HTTP status (404 unknown resource, 400 bad request, 422 too costly ...).
        code: OperationOutcome issue type (https://hl7.org/fhir/R4/valueset-issue-type.html).
        message: human-readable text.
        detail: a ``tx-issue-type`` code, when one applies.
        expression: the parameter or element the problem is about.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: str | None = None,
        expression: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.expression = expression
