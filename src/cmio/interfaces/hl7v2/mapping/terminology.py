"""Local codes through the terminology service's ConceptMaps (FHIR ``$translate``).

:class:`ConceptMapTranslator` is the :data:`cmio.interfaces.hl7v2.mapping.Translate` a channel
passes in :class:`MappingOptions` so local v2 codes (``99LAB``, ``L``...) gain standard codings
from the ConceptMaps loaded in cmio (https://hl7.org/fhir/R4/conceptmap-operation-translate.html ).
Answers are memoised per (system, code) until a terminology resource changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmio.terminology.errors import TerminologyError
from cmio.terminology.lookup import translate
from cmio.terminology.resources import TerminologyResources

__all__ = ["USABLE_EQUIVALENCES", "ConceptMapTranslator"]

USABLE_EQUIVALENCES = frozenset(
    {"equivalent", "equal", "wider", "subsumes", "relatedto", "inexact"}
)
"""Matches whose target can stand for the source code (R4 ConceptMapEquivalence); ``narrower``,
``specializes``, ``unmatched`` and ``disjoint`` targets are not added."""


class ConceptMapTranslator:
    """``translate(system, code) -> [(system, code, display), ...]`` over ConceptMaps.

    Args:
        resources: the terminology resources (store, core package, overlays).
        max_cached: most (system, code) answers kept.

    See https://hl7.org/fhir/R4/conceptmap-operation-translate.html .
    """

    def __init__(self, resources: TerminologyResources, max_cached: int = 50_000) -> None:
        self.resources = resources
        self.max_cached = max_cached
        self._cache: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        self._generation = resources.generation

    def __call__(self, system: str, code: str) -> Sequence[tuple[str, str, str]]:
        """The target codings for one source code (none when no ConceptMap maps it)."""
        if self.resources.generation != self._generation:
            self._cache.clear()
            self._generation = self.resources.generation
        key = (system, code)
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(system, code)
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _lookup(self, system: str, code: str) -> list[tuple[str, str, str]]:
        try:
            result = translate(self.resources, system, code)
        except TerminologyError:
            return []
        out: list[tuple[str, str, str]] = []
        for param in result.get("parameter", []):
            if param.get("name") != "match":
                continue
            parts: dict[str, Any] = {p["name"]: p for p in param.get("part", [])}
            equivalence = parts.get("equivalence", {}).get("valueCode", "equivalent")
            coding = parts.get("concept", {}).get("valueCoding")
            if equivalence in USABLE_EQUIVALENCES and coding and coding.get("code"):
                target = (
                    str(coding.get("system", "")),
                    str(coding["code"]),
                    str(coding.get("display", "")),
                )
                if target not in out:
                    out.append(target)
        return out
