"""FHIRPath errors (http://hl7.org/fhirpath/N1/#errors)."""

from __future__ import annotations

__all__ = ["FhirPathError", "FhirPathSemanticError", "FhirPathSyntaxError"]


class FhirPathError(Exception):
    """An error parsing, checking or evaluating a FHIRPath expression.

    Attributes:
        position: 0-based character offset in the expression, when known.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} (at {position})")
        self.position = position


class FhirPathSyntaxError(FhirPathError):
    """The expression does not follow the grammar (http://hl7.org/fhirpath/N1/#grammar)."""


class FhirPathSemanticError(FhirPathError):
    """The static check found an expression that cannot be valid for the context type."""
