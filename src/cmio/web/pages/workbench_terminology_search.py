"""Code search across the code systems the terminology service knows.

The catalog lists every code system the server's terminology service can answer for:
the concept store's large systems (ICD-10-CM, LOINC, SNOMED CT, RxNorm, UCUM atoms, when
loaded), the CodeSystem resources of the FHIR store and those of the R4 core package
(https://hl7.org/fhir/R4/terminologies-systems.html). A search finds the concepts
whose code is the text, then those whose code or display words start with every word
of the text: the rule of the ``filter`` parameter of ``$expand`` on the system's
implicit value set ``[system]?fhir_vs``
(https://hl7.org/fhir/R4/valueset-operation-expand.html), so the browser's answers are
the service's own. A text that is a valid UCUM expression is also shown as a unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from cmio.store.base import SearchQuery
from cmio.terminology.codesystem import ResourceCodeSystem
from cmio.terminology.service import TerminologyService

__all__ = [
    "UCUM",
    "Catalog",
    "Hit",
    "SearchResult",
    "SystemEntry",
    "ValueSetEntry",
    "code_systems",
    "core_catalog",
    "core_value_sets",
    "search_codes",
    "text_matches",
    "value_sets",
]

UCUM = "http://unitsofmeasure.org"
_CHUNK = 200
_SCAN_LIMIT = 20_000  # concept-store rows read per system and search, at most


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """A code system the service answers for.

    Attributes:
        url: canonical URL. version: its version. title: the name people read.
        count: its concepts. source: ``concept store``, ``store`` or ``core``.
    """

    url: str
    version: str | None
    title: str
    count: int
    source: str


@dataclass(frozen=True, slots=True)
class Row:
    """One concept of a fixed (core) code system. ``words``: the lowered code and display
    words, each preceded by a NUL, so that ``"\\0" + word in words`` says whether the code
    or a display word starts with ``word``."""

    code: str
    display: str | None
    folded: bool
    words: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """The systems to search; the core package's concepts are indexed once (they never
    change), the store's and the concept store's are read live.

    Attributes:
        systems: the catalog entries, in search order.
        fixed: URL -> the concepts of a core system, in definition order.
        by_code: lowered code -> the core systems' URLs having it.
        blobs: URL -> the ``words`` of all its rows (a system without a word is skipped).
    """

    systems: list[SystemEntry]
    fixed: dict[str, list[Row]] = field(default_factory=dict)
    by_code: dict[str, list[str]] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ValueSetEntry:
    """A value set that can be expanded (``url``, ``version``, ``title``, ``source``)."""

    url: str
    version: str | None
    title: str
    source: str


@dataclass(frozen=True, slots=True)
class Hit:
    """One concept found: its system, code, display and why (``code`` or ``text``)."""

    system: str
    system_title: str
    code: str
    display: str | None
    match: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of hits; ``more`` is True when the next page has some."""

    hits: list[Hit]
    offset: int
    more: bool


def text_matches(words: list[str], code: str, display: str | None) -> bool:
    """Whether every word starts the code or a word of the display (the ``$expand``
    ``filter`` rule of the terminology service)."""
    tokens = (display or "").lower().replace("-", " ").replace(",", " ").split()
    lowered = code.lower()
    return all(lowered.startswith(w) or any(t.startswith(w) for t in tokens) for w in words)


def _title(resource: dict[str, Any]) -> str:
    return str(resource.get("title") or resource.get("name") or resource.get("url"))


def _concept_count(concepts: list[Any]) -> int:
    return sum(1 + _concept_count(c.get("concept") or []) for c in concepts if isinstance(c, dict))


def _stored(service: TerminologyService, rtype: str) -> Iterator[dict[str, Any]]:
    repository = service.resources.repository
    if repository is None:
        return
    offset = 0
    while True:
        page = repository.search(SearchQuery(rtype, (), 500, offset, total=False))
        for stored in page.resources:
            if stored.data is not None:
                yield orjson.loads(stored.data)
        if len(page.resources) < 500:
            return
        offset += 500


def _words(code: str, display: str | None) -> str:
    tokens = (display or "").lower().replace("-", " ").replace(",", " ").split()
    return "".join("\0" + t for t in [code.lower(), *tokens])


def core_catalog() -> Catalog:
    """The R4 core package's code systems with concepts, indexed for search (about 20,000
    concepts; build once and keep: they never change)."""
    from cmio.terminology.factory import core_terminology

    systems: list[SystemEntry] = []
    fixed: dict[str, list[Row]] = {}
    for resource in core_terminology():
        url = resource.get("url")
        if resource.get("resourceType") != "CodeSystem" or not isinstance(url, str):
            continue
        count = _concept_count(resource.get("concept") or [])
        if url in fixed or count == 0:
            continue
        systems.append(SystemEntry(url, resource.get("version"), _title(resource), count, "core"))
        indexed = ResourceCodeSystem(resource)
        fixed[url] = [
            Row(e.code, e.display, not indexed.case_sensitive, _words(e.code, e.display))
            for e in indexed.entries.values()
        ]
    systems.sort(key=lambda s: s.title.lower())
    by_code: dict[str, list[str]] = {}
    for entry in systems:
        for row in fixed[entry.url]:
            by_code.setdefault(row.code.lower(), []).append(entry.url)
    blobs = {url: "\1".join(row.words for row in rows) for url, rows in fixed.items()}
    return Catalog(systems, fixed, by_code, blobs)


def code_systems(service: TerminologyService, core: Catalog | None = None) -> Catalog:
    """The catalog: the concept store's systems, the store's CodeSystems with concepts,
    then ``core``'s systems (one entry per URL: a stored system hides a core one)."""
    live: list[SystemEntry] = []
    seen: set[str] = set()
    concepts = service.resources.concepts
    if concepts is not None:
        for info in concepts.systems():
            if info.url not in seen:
                seen.add(info.url)
                title = info.title or info.name or info.url
                live.append(SystemEntry(info.url, info.version, title, info.count, "concept store"))
    stored: list[SystemEntry] = []
    for resource in _stored(service, "CodeSystem"):
        url = resource.get("url")
        count = _concept_count(resource.get("concept") or [])
        if isinstance(url, str) and url not in seen and count > 0:
            seen.add(url)
            stored.append(
                SystemEntry(url, resource.get("version"), _title(resource), count, "store")
            )
    live += sorted(stored, key=lambda s: s.title.lower())
    if core is None:
        return Catalog(live)
    return Catalog(
        live + [s for s in core.systems if s.url not in seen],
        {u: rows for u, rows in core.fixed.items() if u not in seen},
        core.by_code,
        {u: blob for u, blob in core.blobs.items() if u not in seen},
    )


def _valueset_entries(resources: Iterator[dict[str, Any]], label: str) -> list[ValueSetEntry]:
    found: dict[tuple[str, str | None], ValueSetEntry] = {}
    for resource in resources:
        url, version = resource.get("url"), resource.get("version")
        if resource.get("resourceType") == "ValueSet" and isinstance(url, str):
            found.setdefault((url, version), ValueSetEntry(url, version, _title(resource), label))
    return sorted(found.values(), key=lambda v: (v.title.lower(), v.version or ""))


def core_value_sets() -> list[ValueSetEntry]:
    """The R4 core package's value sets, by title."""
    from cmio.terminology.factory import core_terminology

    return _valueset_entries(core_terminology(), "core")


def value_sets(
    service: TerminologyService, core: list[ValueSetEntry] | None = None
) -> list[ValueSetEntry]:
    """The value sets to pick from: the store's, then ``core``'s (a stored ``url|version``
    hides the core one), each part by title."""
    stored = _valueset_entries(_stored(service, "ValueSet"), "store")
    seen = {(v.url, v.version) for v in stored}
    return stored + [v for v in core or () if (v.url, v.version) not in seen]


def _text_hits(
    service: TerminologyService, catalog: Catalog, entry: SystemEntry, words: list[str]
) -> Iterator[Hit]:
    rows = catalog.fixed.get(entry.url)
    if rows is not None:
        marked = ["\0" + w for w in words]
        blob = catalog.blobs.get(entry.url, "")
        if not all(m in blob for m in marked):
            return
        for row in rows:
            if all(m in row.words for m in marked):
                yield Hit(entry.url, entry.title, row.code, row.display, "text")
        return
    if entry.source == "concept store":
        store = service.resources.concepts
        assert store is not None
        scanned = 0
        while scanned < _SCAN_LIMIT:
            chunk = list(
                store.iter_concepts(
                    entry.url, entry.version, offset=scanned, count=_CHUNK, text=" ".join(words)
                )
            )
            for concept in chunk:
                if text_matches(words, concept.code, concept.display):
                    yield Hit(entry.url, entry.title, concept.code, concept.display, "text")
            scanned += len(chunk)
            if len(chunk) < _CHUNK:
                return
        return
    source = service.resources.code_system(entry.url, entry.version)
    for code in source.codes() if source is not None else ():
        found = source.get(code) if source is not None else None
        display = found.display if found is not None else None
        if text_matches(words, code, display):
            yield Hit(entry.url, entry.title, code, display, "text")


def _code_hits(
    service: TerminologyService, catalog: Catalog, entries: list[SystemEntry], code: str
) -> Iterator[Hit]:
    core = set(catalog.by_code.get(code.lower(), ()))
    for entry in entries:
        rows = catalog.fixed.get(entry.url)
        if rows is not None:
            if entry.url in core:
                for row in rows:
                    if row.code == code or (row.folded and row.code.lower() == code.lower()):
                        yield Hit(entry.url, entry.title, row.code, row.display, "code")
                        break
            continue
        source = service.resources.code_system(entry.url, entry.version)
        found = source.get(code) if source is not None else None
        if found is not None:
            yield Hit(entry.url, entry.title, found.code, found.display, "code")


def search_codes(
    service: TerminologyService,
    catalog: Catalog,
    text: str,
    system: str | None = None,
    offset: int = 0,
    limit: int = 50,
    ucum: Any = None,
) -> SearchResult:
    """Concepts for ``text`` in ``system`` (None: every system of the catalog): exact
    code matches first, then text matches, in catalog order.

    Args:
        service: the terminology service.
        catalog: the systems searched (see :func:`code_systems`).
        text: a code or words.
        system: one system URL, or None for all.
        offset: hits skipped (paging). limit: hits returned.
        ucum: a :class:`cmio.terminology.ucum.Ucum` to recognise unit expressions.
    """
    words = [w for w in text.lower().split() if w]
    if not words:
        return SearchResult([], offset, False)
    entries = [e for e in catalog.systems if system in (None, e.url)]
    wanted = offset + limit + 1
    hits: list[Hit] = []
    seen: set[tuple[str, str]] = set()
    code = text.strip()
    for hit in _code_hits(service, catalog, entries, code):
        hits.append(hit)
        seen.add((hit.system, hit.code))
    unit = ucum is not None and system in (None, UCUM) and (UCUM, code) not in seen
    if unit and ucum.validate(code) is None:
        canonical = ucum.analyse(code).unit
        hits.append(Hit(UCUM, "UCUM", code, f"unit expression ({canonical})", "code"))
        seen.add((UCUM, code))
    for entry in entries:
        if len(hits) >= wanted:
            break
        for hit in _text_hits(service, catalog, entry, words):
            if (hit.system, hit.code) in seen:
                continue
            seen.add((hit.system, hit.code))
            hits.append(hit)
            if len(hits) >= wanted:
                break
    return SearchResult(hits[offset : offset + limit], offset, len(hits) > offset + limit)
