"""A code system held by the concept store, seen through :class:`CodeSystemSource`.

Large systems (SNOMED CT, LOINC, ICD-10-CM, RxNorm) are not indexed in memory:
their concepts, is-a edges and transitive closure live in the SQLite concept store
(:mod:`cmio.terminology.concepts`); this adapter turns its rows into
:class:`~cmio.terminology.codesystem.Entry` objects on demand
(https://hl7.org/fhir/R4/codesystem.html#content: ``not-present`` resources).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from cmio.terminology._store_read import ConceptRow, concept_of_row
from cmio.terminology.codesystem import Entry
from cmio.terminology.concept_types import Concept, SystemInfo
from cmio.terminology.concepts import ConceptStore

__all__ = ["StoredCodeSystem", "entry_of"]

_TYPES = {
    "code": "valueCode",
    "Coding": "valueCode",
    "string": "valueString",
    "integer": "valueInteger",
    "boolean": "valueBoolean",
    "dateTime": "valueDateTime",
    "decimal": "valueDecimal",
}


def entry_of(concept: Concept, types: dict[str, str]) -> Entry:
    """The operations' view of a stored concept."""
    designations: list[dict[str, Any]] = []
    for d in concept.designations:
        item: dict[str, Any] = {"value": d.value}
        if d.language:
            item["language"] = d.language
        if d.use_code:
            item["use"] = {"system": d.use_system, "code": d.use_code}
        designations.append(item)
    properties: list[tuple[str, str, Any]] = []
    abstract = False
    for code, value in concept.properties:
        key = types.get(code) or (
            "valueBoolean"
            if isinstance(value, bool)
            else "valueInteger"
            if isinstance(value, int)
            else "valueDecimal"
            if isinstance(value, float)
            else "valueCode"
        )
        properties.append((code, key, value))
        if code == "notSelectable" and value in (True, "true"):
            abstract = True
    return Entry(
        concept.code,
        concept.display,
        concept.definition,
        designations,
        properties,
        list(concept.parents),
        [],
        abstract,
        not concept.active,
    )


def _light_entry(row: ConceptRow, types: dict[str, str]) -> Entry:
    """An entry with what an expansion row shows; the blob is decoded only when it may
    carry ``notSelectable`` (the abstract flag)."""
    blob = row[4]
    if blob is not None and b"notSelectable" in blob:
        full = entry_of(concept_of_row(row), types)
        return Entry(row[0], row[1], row[2], abstract=full.abstract, inactive=not row[3])
    return Entry(row[0], row[1], row[2], inactive=not row[3])


class StoredCodeSystem:
    """One (url, version) of the concept store.

    Args:
        store: the concept store.
        info: the system's summary.
        cache_size: concepts kept decoded.
    """

    case_sensitive = True

    def __init__(self, store: ConceptStore, info: SystemInfo, cache_size: int = 50_000) -> None:
        self.store = store
        self.info = info
        self.url = info.url
        self.version = info.version
        self.resource: dict[str, Any] = {
            "resourceType": "CodeSystem",
            "url": info.url,
            "name": info.name,
            "title": info.title,
            "status": "active",
            "content": "not-present",
            "count": info.count,
        }
        if info.version:
            self.resource["version"] = info.version
        self._types = {code: _TYPES.get(kind, "valueString") for code, kind, _ in info.properties}
        self._cache: OrderedDict[str, Entry | None] = OrderedDict()
        self._cache_size = cache_size
        self._pages: OrderedDict[tuple[str, int, int, bool], tuple[int, list[Entry]]] = (
            OrderedDict()
        )

    page_cache = 256
    """Expansion pages kept by :meth:`page_under`."""

    def get(self, code: str) -> Entry | None:
        """The concept, decoded once and kept (LRU)."""
        if code in self._cache:
            return self._cache[code]
        concept = self.store.lookup(self.url, code, self.version)
        entry = None if concept is None else entry_of(concept, self._types)
        self._cache[code] = entry
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def prefetch(self, codes: Sequence[str]) -> None:
        """Decode many concepts in a few queries (for a page of an expansion)."""
        missing = [c for c in codes if c not in self._cache]
        if not missing:
            return
        found = self.store.lookup_many(self.url, missing, self.version)
        for code in missing:
            concept = found.get(code)
            self._cache[code] = None if concept is None else entry_of(concept, self._types)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def page_under(
        self, code: str, offset: int, count: int, full: bool = True
    ) -> tuple[int, list[Entry]]:
        """``code`` and everything below it (is-a), paged in SQL over the closure.

        Pages are kept (LRU, ``page_cache`` of them) for the life of this object, which
        :class:`~cmio.terminology.resources.TerminologyResources` replaces when a
        terminology resource or the concept store changes.

        Args:
            code: the top concept.
            offset: first concept of the page.
            count: concepts in the page.
            full: decode designations, properties and parents; when False the entries
                carry only what an expansion's ``contains`` shows without designations
                (code, display, definition, inactive, abstract).

        Returns:
            the total number of such concepts and the entries of the page (in load
            order, stable across pages).
        """
        key = (code, offset, count, full)
        hit = self._pages.get(key)
        if hit is not None:
            self._pages.move_to_end(key)
            return hit
        total, rows = self.store.page_below(self.url, code, self.version, offset, count)
        entries = []
        for row in rows:
            if full:
                entry = entry_of(concept_of_row(row), self._types)
                self._cache[row[0]] = entry
            else:
                entry = _light_entry(row, self._types)
            entries.append(entry)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self._pages[key] = (total, entries)
        if len(self._pages) > self.page_cache:
            self._pages.popitem(last=False)
        return total, entries

    def codes(self) -> Iterator[str]:
        """Every code in load order."""
        return (c.code for c in self.store.iter_concepts(self.url, self.version))

    def count(self) -> int:
        """The number of concepts."""
        return self.info.count

    def descendants(self, code: str) -> list[str]:
        """Codes below ``code`` (from the precomputed closure)."""
        return list(self.store.descendants(self.url, code, self.version))

    def ancestors(self, code: str) -> list[str]:
        """Codes above ``code``."""
        return list(self.store.ancestors(self.url, code, self.version))

    def children(self, code: str) -> list[str]:
        """Direct children."""
        return self.store.children(self.url, code, self.version)

    def with_property(self, prop: str, value: str) -> Iterator[str]:
        """Codes having ``prop`` equal to ``value``."""
        return self.store.with_property(self.url, prop, value, self.version)
