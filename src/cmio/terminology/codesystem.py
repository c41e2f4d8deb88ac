"""Code systems as the operations see them: concepts, hierarchy, properties.

Two sources share one small interface (:class:`CodeSystemSource`): a CodeSystem
resource with its concepts indexed in memory (:class:`ResourceCodeSystem`; the
FHIR definition is https://hl7.org/fhir/R4/codesystem.html) and, for large
systems, the concept store (:mod:`cmio.terminology.stored`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "EXTENSION_PROPERTIES",
    "RENDERING",
    "CodeSystemSource",
    "Entry",
    "ResourceCodeSystem",
    "extension_properties",
    "property_value",
]

_VALUE_KEYS = (
    "valueCode",
    "valueCoding",
    "valueString",
    "valueInteger",
    "valueBoolean",
    "valueDateTime",
    "valueDecimal",
)


def property_value(prop: dict[str, Any]) -> tuple[str, Any] | None:
    """The ``(valueX key, value)`` of a ``concept.property`` element."""
    for key in _VALUE_KEYS:
        if key in prop:
            return key, prop[key]
    return None


@dataclass(slots=True)
class Entry:
    """One concept of a code system.

    Attributes:
        code: the code.
        display: the preferred display (in the code system's language).
        definition: the formal definition.
        designations: FHIR ``designation`` elements (``language``, ``use``, ``value``).
        properties: ``(property code, valueX key, value)`` in source order.
        parents: codes of the direct parents.
        children: codes of the direct children.
        abstract: not selectable (``notSelectable`` property).
        inactive: inactive (``inactive`` property, or status ``retired``/``inactive``).
        status: the concept status property, when present (``retired``, ``deprecated`` ...),
            else the concept's ``structuredefinition-standards-status`` extension.
        extras: ``(property code, valueX key, value)`` the concept states by extension
            (``label``, ``order``, ``weight``, ``status``: :data:`EXTENSION_PROPERTIES`).
        rendering: the concept's ``rendering-style`` and ``rendering-xhtml`` extensions
            (https://hl7.org/fhir/extensions/StructureDefinition-rendering-style.html),
            shown on its expansion rows.
    """

    code: str
    display: str | None = None
    definition: str | None = None
    designations: list[dict[str, Any]] = field(default_factory=list)
    properties: list[tuple[str, str, Any]] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    abstract: bool = False
    inactive: bool = False
    status: str | None = None
    extras: tuple[tuple[str, str, Any], ...] = ()
    rendering: tuple[dict[str, Any], ...] = ()

    def values_of(self, prop: str) -> list[Any]:
        """The values of one property (codes of Codings for ``valueCoding``)."""
        out: list[Any] = []
        for code, key, value in self.properties:
            if code == prop:
                out.append(value.get("code") if key == "valueCoding" else value)
        return out


class CodeSystemSource(Protocol):
    """What the operations need of a code system (resource-backed or store-backed)."""

    url: str
    version: str | None
    resource: dict[str, Any]
    case_sensitive: bool

    def get(self, code: str) -> Entry | None:
        """The concept with this code (case folded when the system is not case-sensitive)."""
        ...

    def codes(self) -> Iterable[str]:
        """Every code, in definition order."""
        ...

    def count(self) -> int:
        """The number of concepts."""
        ...

    def descendants(self, code: str) -> Iterable[str]:
        """Codes below ``code`` (transitively), not including it."""
        ...

    def ancestors(self, code: str) -> Iterable[str]:
        """Codes above ``code`` (transitively), not including it."""
        ...

    def children(self, code: str) -> Sequence[str]:
        """Direct children."""
        ...

    def with_property(self, prop: str, value: str) -> Iterable[str]:
        """Codes having ``prop`` equal to ``value``."""
        ...


def _flag(value: Any) -> bool:
    return value is True or value == "true"


_STANDARD_PROPERTY = "http://hl7.org/fhir/concept-properties#"
_FLAGS = ("notSelectable", "inactive", "status")
_EXT = "http://hl7.org/fhir/StructureDefinition/"
EXTENSION_PROPERTIES: dict[str, tuple[str, str]] = {
    _EXT + "codesystem-label": ("label", "valueString"),
    _EXT + "valueset-label": ("label", "valueString"),
    _EXT + "codesystem-conceptOrder": ("order", "valueDecimal"),
    _EXT + "valueset-conceptOrder": ("order", "valueDecimal"),
    _EXT + "itemWeight": ("weight", "valueDecimal"),
    _EXT + "structuredefinition-standards-status": ("status", "valueCode"),
}
"""Concept extensions that state a standard concept property
(https://hl7.org/fhir/R5/codesystem-concept-properties.html: ``label``, ``order``,
``itemWeight`` as ``weight``, ``status``): extension URL -> (property code, valueX key)."""


RENDERING = frozenset({_EXT + "rendering-style", _EXT + "rendering-xhtml"})
"""Extensions on how a concept is shown, kept for its expansion rows."""


def extension_properties(extensions: Iterable[Any]) -> tuple[tuple[str, str, Any], ...]:
    """The ``(code, valueX key, value)`` of the :data:`EXTENSION_PROPERTIES` among
    ``extensions`` (the first of each code)."""
    found: dict[str, tuple[str, str, Any]] = {}
    for extension in extensions:
        if not isinstance(extension, dict) or extension.get("url") not in EXTENSION_PROPERTIES:
            continue
        code, key = EXTENSION_PROPERTIES[extension["url"]]
        value = next((v for k, v in extension.items() if k.startswith("value")), None)
        if value is not None and not isinstance(value, dict | list):
            found.setdefault(code, (code, key, value))
    return tuple(found.values())


def _standard_aliases(resource: dict[str, Any]) -> dict[str, str]:
    """Property codes declared with the URI of a standard concept property they are not
    named after (``not-selectable`` for ``concept-properties#notSelectable``,
    https://hl7.org/fhir/R5/codesystem-concept-properties.html)."""
    out: dict[str, str] = {}
    for prop in resource.get("property") or ():
        if not isinstance(prop, dict) or not isinstance(prop.get("code"), str):
            continue
        uri = str(prop.get("uri") or "")
        name = uri.removeprefix(_STANDARD_PROPERTY) if uri.startswith(_STANDARD_PROPERTY) else None
        if name in _FLAGS and prop["code"] not in _FLAGS:
            out[prop["code"]] = name
    return out


def _stated(entry: Entry, extensions: Iterable[Any]) -> None:
    """Set what a concept's extensions state: its rendering, label, order, weight and
    (unless a property gave it) its status."""
    rendering = tuple(e for e in extensions if isinstance(e, dict) and e.get("url") in RENDERING)
    if rendering:
        entry.rendering = rendering
    extras = extension_properties(extensions)
    if extras:
        entry.extras = extras
        if entry.status is None:  # the concept's standards status stands for its status
            entry.status = next((str(v) for c, _, v in extras if c == "status"), None)


class ResourceCodeSystem:
    """A CodeSystem resource with its concepts indexed in memory.

    Nested ``concept`` elements and the ``parent``/``child``/``subsumedBy``
    properties give the hierarchy (https://hl7.org/fhir/R4/codesystem.html#hierarchy).

    Args:
        resource: the CodeSystem resource (JSON).
    """

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.url: str = resource.get("url", "")
        self.version: str | None = resource.get("version")
        self.case_sensitive = resource.get("caseSensitive") is not False
        self.content: str = resource.get("content", "complete")
        self.entries: dict[str, Entry] = {}
        self._folded: dict[str, str] = {}
        self._closure: dict[str, frozenset[str]] = {}
        self._aliases = _standard_aliases(resource)
        self._add(resource.get("concept") or (), None)
        for entry in list(self.entries.values()):
            for parent in entry.values_of("parent") + entry.values_of("subsumedBy"):
                self._link(str(parent), entry.code)
            for child in entry.values_of("child"):
                self._link(entry.code, str(child))
        if not self.case_sensitive:
            self._folded = {code.lower(): code for code in self.entries}

    def _link(self, parent: str, child: str) -> None:
        above, below = self.entries.get(parent), self.entries.get(child)
        if above is None or below is None:
            return
        if child not in above.children:
            above.children.append(child)
        if parent not in below.parents:
            below.parents.append(parent)

    def _add(self, concepts: Iterable[Any], parent: str | None) -> None:
        for concept in concepts:
            if not isinstance(concept, dict) or not isinstance(concept.get("code"), str):
                continue
            entry = self._entry(concept, self._aliases)
            self.entries.setdefault(entry.code, entry)
            if parent is not None:
                self._link(parent, entry.code)
            self._add(concept.get("concept") or (), entry.code)

    @staticmethod
    def _entry(concept: dict[str, Any], aliases: dict[str, str]) -> Entry:
        entry = Entry(
            concept["code"],
            concept.get("display"),
            concept.get("definition"),
            [d for d in concept.get("designation") or () if isinstance(d, dict)],
        )
        for prop in concept.get("property") or ():
            found = property_value(prop) if isinstance(prop, dict) else None
            if found is None or not isinstance(prop.get("code"), str):
                continue
            code, (key, value) = prop["code"], found
            entry.properties.append((code, key, value))
            code = aliases.get(code, code)  # declared with a standard property's URI
            if code == "notSelectable" and _flag(value):
                entry.abstract = True
            elif code == "inactive" and _flag(value):
                entry.inactive = True
            elif code == "status" and isinstance(value, str):
                entry.status = value
                if value in ("retired", "inactive"):
                    entry.inactive = True
        extensions = concept.get("extension")
        if extensions:  # most concepts have none
            _stated(entry, extensions)
        return entry

    def get(self, code: str) -> Entry | None:
        """The concept with this code (case folded when the system is not case-sensitive)."""
        found = self.entries.get(code)
        if found is None and not self.case_sensitive:
            real = self._folded.get(code.lower())
            found = None if real is None else self.entries[real]
        return found

    def codes(self) -> Iterable[str]:
        """Every code, in definition order."""
        return self.entries.keys()

    def count(self) -> int:
        """The number of concepts."""
        return len(self.entries)

    def descendants(self, code: str) -> frozenset[str]:
        """Codes below ``code`` (transitively), not including it; cached."""
        cached = self._closure.get(code)
        if cached is not None:
            return cached
        seen: set[str] = set()
        entry = self.entries.get(code)
        stack = list(entry.children) if entry else []
        while stack:
            item = stack.pop()
            if item in seen or item == code:
                continue
            seen.add(item)
            stack.extend(self.entries[item].children)
        result = frozenset(seen)
        self._closure[code] = result
        return result

    def ancestors(self, code: str) -> set[str]:
        """Codes above ``code`` (transitively), not including it."""
        seen: set[str] = set()
        entry = self.entries.get(code)
        stack = list(entry.parents) if entry else []
        while stack:
            item = stack.pop()
            if item in seen or item == code:
                continue
            seen.add(item)
            stack.extend(self.entries[item].parents)
        return seen

    def children(self, code: str) -> Sequence[str]:
        """Direct children."""
        entry = self.entries.get(code)
        return entry.children if entry else ()

    def with_property(self, prop: str, value: str) -> Iterator[str]:
        """Codes having ``prop`` equal to ``value`` (Booleans compared as text)."""
        for entry in self.entries.values():
            for found in entry.values_of(prop):
                text = ("true" if found else "false") if isinstance(found, bool) else str(found)
                if text == value:
                    yield entry.code
                    break
