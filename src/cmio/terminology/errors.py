"""Errors of the terminology operations, with what their OperationOutcome needs."""

from __future__ import annotations

__all__ = ["TX_ISSUE_TYPE", "TerminologyError", "unknown_system_text"]

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


def unknown_system_text(
    system: str, version: str | None, known: list[str], so: str, quoted: bool = False
) -> str:
    """The message for a code system (version) the server does not have, worded as the HL7
    terminology ecosystem tests expect (``so``: what could not be done, e.g. "the code
    cannot be validated"; ``quoted``: the system is one a value set uses, not only the
    value's; https://hl7.org/fhir/R4/terminology-service.html)."""
    if not version:
        shown = f"'{system}'" if quoted else system
        return f"A definition for CodeSystem {shown} could not be found, so {so}"
    text = f"A definition for CodeSystem '{system}' version '{version}' could not be found, so {so}"
    if not known:
        return f"{text}. No versions of this code system are known"
    listed = known[0] if len(known) == 1 else f"{', '.join(known[:-1])} or {known[-1]}"
    return f"{text}. Valid versions: {listed}"
