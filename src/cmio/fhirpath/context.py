"""The state of one evaluation, and the pluggable services it may call.

A :class:`Context` is created per :meth:`CompiledExpression.evaluate` call and
never shared, which keeps evaluation reentrant and thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from cmio.fhirpath.fhirtypes import FhirTypes

__all__ = ["Context", "Resolver", "TerminologyProvider"]

Resolver = Callable[[str], Any]
"""Resolve a reference string (``Patient/123``, an absolute URL) to FHIR JSON, or None."""


class TerminologyProvider(Protocol):
    """What ``memberOf()`` needs from a terminology service
    (http://hl7.org/fhir/R4/fhirpath.html#functions)."""

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        """Whether a coding is in a value set (None: unknown).

        Args:
            code: ``{"system": ..., "code": ...}``, a Coding or a CodeableConcept (JSON).
            valueset: the value set's canonical URL.
        """
        ...


class Context:
    """Evaluation state: environment variables, services, iteration variables."""

    __slots__ = (
        "_now",
        "index",
        "logger",
        "resolver",
        "resource",
        "root",
        "strict",
        "terminology",
        "total",
        "types",
        "variables",
    )

    def __init__(
        self,
        types: FhirTypes,
        root: list[Any],
        variables: Mapping[str, list[Any]],
        resolver: Resolver | None,
        terminology: TerminologyProvider | None,
        logger: logging.Logger,
        strict: bool = False,
    ) -> None:
        self.types = types
        self.root = root
        self.resource = root
        self.variables = variables
        self.resolver = resolver
        self.terminology = terminology
        self.logger = logger
        self.strict = strict
        self.index: int | None = None
        self.total: list[Any] = []
        self._now: datetime | None = None

    def now(self) -> datetime:
        """The evaluation's clock reading: the same for every call in one evaluation."""
        if self._now is None:
            self._now = datetime.now().astimezone()
        return self._now
