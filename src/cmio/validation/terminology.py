"""Code membership in value sets, from the ValueSets and CodeSystems of packages.

:class:`TerminologyProvider` is the one question binding validation asks
(https://hl7.org/fhir/R4/terminologies.html#binding); a terminology server can
answer it later. :class:`PackageTerminology` answers it from the definitions at
hand by expanding simple value sets (https://hl7.org/fhir/R4/valueset.html#compositions):
``compose.include`` with ``system`` and ``concept`` lists, whole code systems
held in a package with complete content, ``is-a``/``descendent-of``/``is-not-a``
filters over such code systems, ``valueSet`` imports, and ``exclude``. Anything
else (SNOMED CT, LOINC, UCUM without a concept list, property filters) has an
unknown answer (None): the validator then reports nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cmio.validation.packages import Definitions, strip_version

__all__ = ["Expansion", "PackageTerminology", "TerminologyProvider"]

_MAX_DEPTH = 8


class TerminologyProvider(Protocol):
    """Answers whether a code is in a value set (https://hl7.org/fhir/R4/valueset-operation-validate-code.html)."""

    def validate_code(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        """True if the code is in the value set, False if not, None if unknown.

        Args:
            valueset_url: canonical URL of the value set (a ``|version`` may follow).
            system: the code system URL; None for a bare ``code`` element, whose
                system is implied by the value set.
            code: the code.
        """
        ...


@dataclass(frozen=True, slots=True)
class Expansion:
    """What is known of a value set's content.

    Attributes:
        codes: code system URL -> the codes of that system in the value set.
        open_systems: systems included whose membership cannot be computed here.
        complete: False when a part could not be resolved (an unknown imported
            value set): then codes not listed are of unknown membership.
    """

    codes: Mapping[str, frozenset[str]]
    open_systems: frozenset[str]
    complete: bool

    def contains(self, system: str | None, code: str) -> bool | None:
        """Membership of ``system|code`` (``system`` None: any system)."""
        if system is None:
            if any(code in codes for codes in self.codes.values()):
                return True
            return None if self.open_systems or not self.complete else False
        if code in self.codes.get(system, ()):
            return True
        return None if system in self.open_systems or not self.complete else False


_UNKNOWN = Expansion({}, frozenset(), False)


def _walk_concepts(concepts: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for concept in concepts:
        if type(concept) is dict:
            yield concept
            yield from _walk_concepts(concept.get("concept", ()))


def _descendants(concepts: Iterable[Any], root: str) -> set[str] | None:
    """The codes strictly below ``root`` in a CodeSystem's concept hierarchy (None: root absent)."""
    for concept in _walk_concepts(concepts):
        if concept.get("code") == root:
            return {c["code"] for c in _walk_concepts(concept.get("concept", ())) if "code" in c}
    return None


class PackageTerminology:
    """A :class:`TerminologyProvider` over the ValueSets and CodeSystems of packages.

    Expansions are computed on first use and kept.

    Args:
        definitions: the packages' canonical resources.
    """

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._expansions: dict[str, Expansion] = {}

    def validate_code(self, valueset_url: str, system: str | None, code: str) -> bool | None:
        """See :meth:`TerminologyProvider.validate_code`."""
        return self.expansion(valueset_url).contains(system, code)

    def expansion(self, valueset_url: str) -> Expansion:
        """The (possibly partial) expansion of a value set; unknown ones are empty and incomplete."""
        url = strip_version(valueset_url)
        found = self._expansions.get(url)
        if found is None:
            found = self._expand(url, 0)
            self._expansions[url] = found
        return found

    def _expand(self, url: str, depth: int) -> Expansion:
        valueset = self.definitions.value_set(url)
        if valueset is None or depth > _MAX_DEPTH:
            return _UNKNOWN
        compose = valueset.get("compose")
        if type(compose) is not dict:
            return self._from_expansion(valueset)
        codes: dict[str, set[str]] = {}
        open_systems: set[str] = set()
        complete = True
        for include in compose.get("include", ()):
            part = self._include(include, depth)
            complete &= part.complete
            open_systems |= part.open_systems
            for system, found in part.codes.items():
                codes.setdefault(system, set()).update(found)
        for exclude in compose.get("exclude", ()):
            part = self._include(exclude, depth)
            for system, found in part.codes.items():
                if system in codes:
                    codes[system] -= found
        frozen = {system: frozenset(found) for system, found in codes.items()}
        return Expansion(frozen, frozenset(open_systems), complete)

    def _from_expansion(self, valueset: dict[str, Any]) -> Expansion:
        expansion = valueset.get("expansion")
        if type(expansion) is not dict:
            return _UNKNOWN
        codes: dict[str, set[str]] = {}
        for entry in _walk_contains(expansion.get("contains", ())):
            if "system" in entry and "code" in entry:
                codes.setdefault(entry["system"], set()).add(entry["code"])
        total = expansion.get("total")
        complete = type(total) is int and total == sum(len(c) for c in codes.values())
        return Expansion({s: frozenset(c) for s, c in codes.items()}, frozenset(), complete)

    def _include(self, include: Any, depth: int) -> Expansion:
        if type(include) is not dict:
            return _UNKNOWN
        imported = [self._expand(strip_version(u), depth + 1) for u in include.get("valueSet", ())]
        system = include.get("system")
        if type(system) is not str:
            if not imported:
                return _UNKNOWN
            return _intersection(imported)
        own = self._system_part(system, include)
        return _intersection([own, *imported]) if imported else own

    def _system_part(self, system: str, include: dict[str, Any]) -> Expansion:
        listed = include.get("concept")
        if type(listed) is list:
            codes = frozenset(c["code"] for c in listed if type(c) is dict and "code" in c)
            return Expansion({system: codes}, frozenset(), True)
        codesystem = self.definitions.code_system(system)
        if codesystem is None or codesystem.get("content") != "complete":
            return Expansion({}, frozenset({system}), True)
        concepts = codesystem.get("concept", ())
        everything = {c["code"] for c in _walk_concepts(concepts) if "code" in c}
        selected = everything
        for filt in include.get("filter", ()):
            chosen = _apply_filter(concepts, everything, filt)
            if chosen is None:
                return Expansion({}, frozenset({system}), True)
            selected = selected & chosen
        return Expansion({system: frozenset(selected)}, frozenset(), True)


def _walk_contains(entries: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for entry in entries:
        if type(entry) is dict:
            yield entry
            yield from _walk_contains(entry.get("contains", ()))


def _apply_filter(concepts: Any, everything: set[str], filt: Any) -> set[str] | None:
    """The codes a ``compose.include.filter`` selects (None: filter not supported here)."""
    if type(filt) is not dict or filt.get("property") != "concept":
        return None
    op, value = filt.get("op"), filt.get("value")
    if type(value) is not str:
        return None
    below = _descendants(concepts, value)
    if below is None:
        return set()
    if op == "is-a":
        return below | {value}
    if op == "descendent-of":
        return below
    if op == "is-not-a":
        return everything - below - {value}
    return None


def _intersection(parts: list[Expansion]) -> Expansion:
    first, rest = parts[0], parts[1:]
    if not rest:
        return first
    codes: dict[str, frozenset[str]] = {}
    for system, found in first.codes.items():
        for other in rest:
            if system in other.open_systems:
                continue
            found = found & other.codes.get(system, frozenset())
        codes[system] = found
    complete = all(p.complete for p in parts)
    open_systems = frozenset.intersection(*(p.open_systems for p in parts))
    return Expansion(codes, open_systems, complete)
