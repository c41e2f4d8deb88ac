"""The terminology service behind the protocols other layers call.

* FHIRPath ``memberOf()`` (:class:`cmio.fhirpath.context.TerminologyProvider`),
  https://hl7.org/fhir/R4/fhirpath.html#functions;
* binding validation (:class:`cmio.validation.terminology.TerminologyProvider`),
  https://hl7.org/fhir/R4/terminologies.html#binding;
* search ``:in``/``:not-in``/``:above``/``:below``
  (:class:`cmio.search.terminology.TerminologyProvider`),
  https://hl7.org/fhir/R4/search.html#token.

All three answer from a membership table per value set (the cached expansion), so
a check is a dictionary look-up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from cmio.store.base import InvalidRequestError
from cmio.terminology.errors import TerminologyError
from cmio.terminology.expansion import Expansion
from cmio.terminology.service import TerminologyService

__all__ = ["ServiceTerminology"]


class ServiceTerminology:
    """One adapter for all three protocols (FHIRPath, validation, search).

    Args:
        service: the terminology service.
        ttl: seconds a value set's membership table is reused before the
            resource is looked up again (writes of terminology resources clear it).
    """

    def __init__(self, service: TerminologyService, ttl: float = 5.0) -> None:
        self.service = service
        self.ttl = ttl
        self._tables: dict[str, tuple[float, int, Expansion | None]] = {}

    def membership(self, valueset: str) -> Expansion | None:
        """The expansion of a value set by canonical URL (None: unknown or not expandable)."""
        now = time.monotonic()
        generation = self.service.resources.generation
        hit = self._tables.get(valueset)
        if hit is not None and hit[1] == generation and now - hit[0] < self.ttl:
            return hit[2]
        try:
            found: Expansion | None = self.service.expansion(self.service.find_valueset(valueset))
        except TerminologyError:
            found = None
        self._tables[valueset] = (now, generation, found)
        return found

    def validate_code(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        """Whether ``system|code`` is in the value set (None: unknown value set)."""
        expansion = self.membership(valueset_url)
        if expansion is None:
            return None
        if system is not None:
            return (system, code) in expansion.members
        return any(member.code == code for member in expansion.members.values())

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        """FHIRPath ``memberOf()`` for a Coding or CodeableConcept (JSON)."""
        codings = code.get("coding") if "coding" in code else [code]
        if not isinstance(codings, list):
            return None
        answers = [
            self.validate_code(valueset, c.get("system"), c["code"])
            for c in codings
            if isinstance(c, Mapping) and isinstance(c.get("code"), str)
        ]
        if any(a is True for a in answers):
            return True
        return None if not answers or any(a is None for a in answers) else False

    def expand(self, valueset: str) -> Iterable[tuple[str, str]]:
        """All ``(system, code)`` pairs of a value set (search ``:in``/``:not-in``)."""
        expansion = self.membership(valueset)
        if expansion is None:
            raise InvalidRequestError(f"Unknown value set {valueset!r} (or it cannot be expanded)")
        return list(expansion.members)

    def subsumption(self, system: str, code: str, above: bool) -> Iterable[tuple[str, str]]:
        """Codes subsumed by (``above=False``) or subsuming (``above=True``) ``system|code``,
        the code itself included."""
        source = self.service.resources.code_system(system)
        if source is None or source.get(code) is None:
            return [(system, code)]
        related = source.ancestors(code) if above else source.descendants(code)
        return [(system, code), *((system, c) for c in related)]
