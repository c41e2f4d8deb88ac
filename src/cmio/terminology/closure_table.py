"""Client closure tables kept by the server (``ConceptMap/$closure``).

A client that keeps its own closure table (which of its recorded codes subsume which)
names a context, adds the concepts it meets, and receives each time only the new
subsumption relations among all concepts of that context, as a ConceptMap carrying the
table's version; with a version it already has, it receives every relation added since
(https://hl7.org/fhir/R4/conceptmap-operation-closure.html and
https://hl7.org/fhir/R4/terminology-service.html#closure).

Relations are stated from the concept added, per R4's ``ConceptMapEquivalence``: target
``subsumes`` (the concept is-a the target), ``specializes`` (the target is-a the
concept), ``equal``. Only codes of the same code system are related. The state is
plain data (:class:`ClosureState`), serialized as JSON for the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cmio.terminology.errors import TerminologyError
from cmio.terminology.resources import TerminologyResources

__all__ = ["ClosureEntry", "ClosureState", "add_concepts", "closure_map"]

ClosureEntry = tuple[int, str, str, str, str]
"""``(version, system, code, target code, equivalence)``: one relation, with the table
version that first returned it."""


@dataclass(slots=True)
class ClosureState:
    """One named closure table: its version, its concepts and the relations found."""

    version: int = 0
    concepts: list[tuple[str, str]] = field(default_factory=list)
    """``(system, code)`` in the order added."""
    entries: list[ClosureEntry] = field(default_factory=list)

    def dumps(self) -> str:
        """JSON text of the state."""
        data = {"version": self.version, "concepts": self.concepts, "entries": self.entries}
        return orjson.dumps(data).decode()

    @classmethod
    def loads(cls, text: str) -> ClosureState:
        """The state saved by :meth:`dumps`."""
        data = orjson.loads(text)
        return cls(
            int(data["version"]),
            [(str(s), str(c)) for s, c in data["concepts"]],
            [(int(v), str(s), str(c), str(t), str(e)) for v, s, c, t, e in data["entries"]],
        )

    def since(self, version: int) -> list[ClosureEntry]:
        """The relations first returned after table version ``version``."""
        return [entry for entry in self.entries if entry[0] > version]


def add_concepts(
    state: ClosureState, codings: list[dict[str, Any]], resources: TerminologyResources
) -> list[ClosureEntry]:
    """Add ``codings`` to ``state`` and return the new relations (the state's version goes
    up by one when there are any). Concepts already in the table are ignored.

    Raises:
        TerminologyError: a coding without system or code, or one the server does not know
            (nothing is added then).
    """
    known = set(state.concepts)
    fresh: list[tuple[str, str, str | None]] = []
    for index, coding in enumerate(codings):
        system, code = coding.get("system"), coding.get("code")
        where = f"concept[{index}]"
        if not isinstance(system, str) or not isinstance(code, str) or not system or not code:
            raise TerminologyError(
                400, "required", "A closure concept needs a system and a code", expression=where
            )
        version = coding.get("version")
        source = resources.code_system(system, version if isinstance(version, str) else None)
        if source is None:
            raise TerminologyError(
                404,
                "not-found",
                f"A definition for CodeSystem '{system}' could not be found",
                detail="not-found",
                expression=f"{where}.system",
            )
        if source.get(code) is None:
            raise TerminologyError(
                404,
                "not-found",
                f"Unknown code '{code}' in the CodeSystem '{system}'",
                detail="invalid-code",
                expression=f"{where}.code",
            )
        if (system, code) not in known:
            known.add((system, code))
            fresh.append((system, code, version if isinstance(version, str) else None))
    if not fresh:
        return []
    ancestors: dict[tuple[str, str], set[str]] = {}

    def above(system: str, code: str, version: str | None = None) -> set[str]:
        key = (system, code)
        if key not in ancestors:
            source = resources.code_system(system, version)
            ancestors[key] = set(source.ancestors(code)) if source is not None else set()
        return ancestors[key]

    version = state.version + 1
    added: list[ClosureEntry] = []
    for system, code, code_version in fresh:
        mine = above(system, code, code_version)
        for other_system, other in state.concepts:
            if other_system != system:
                continue
            if other == code:
                relation = "equal"
            elif other in mine:
                relation = "subsumes"  # the target subsumes the concept added
            elif code in above(system, other):
                relation = "specializes"  # the target specializes the concept added
            else:
                continue
            added.append((version, system, code, other, relation))
        state.concepts.append((system, code))
    if added:
        state.version = version
        state.entries.extend(added)
    return added


def closure_map(name: str, version: int, entries: list[ClosureEntry]) -> dict[str, Any]:
    """The ConceptMap returned by ``$closure``: ``entries`` grouped by system and code, with
    the table's ``version``."""
    groups: dict[str, dict[str, list[dict[str, str]]]] = {}
    for _, system, code, target, relation in entries:
        groups.setdefault(system, {}).setdefault(code, []).append(
            {"code": target, "equivalence": relation}
        )
    return {
        "resourceType": "ConceptMap",
        "name": name,
        "version": str(version),
        "status": "active",
        "group": [
            {
                "source": system,
                "target": system,
                "element": [{"code": code, "target": targets} for code, targets in codes.items()],
            }
            for system, codes in groups.items()
        ],
    }
