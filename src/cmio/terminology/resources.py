"""Where CodeSystem, ValueSet and ConceptMap resources come from, by canonical URL.

Three layers, first match wins: resources given with one call (the ``tx-resource``
parameter), the FHIR repository, then the R4 core package. Versions sit side by
side: several resources may share a ``url`` with different ``version``s; a
reference ``url|version`` pins one, otherwise the newest version is used
(https://hl7.org/fhir/R4/references.html#canonical).

Repository look-ups are cached for ``ttl`` seconds per URL (5 s: the bound on
staleness across server processes) and dropped at once by
:meth:`TerminologyResources.changed` (called in process when a terminology resource
is written); indexed code systems are cached by the stored resource's version.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from cmio.store.base import Repository, SearchClause, SearchQuery
from cmio.terminology.codesystem import CodeSystemSource, ResourceCodeSystem

if TYPE_CHECKING:
    from cmio.terminology.concepts import ConceptStore

__all__ = ["TERMINOLOGY_TYPES", "TerminologyResources", "split_canonical", "version_key"]

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ValueSet", "ConceptMap"})

_PART = re.compile(r"(\d+)|([^\d.\-+]+)")


def split_canonical(url: str) -> tuple[str, str | None]:
    """``url|version`` -> ``(url, version)``."""
    base, bar, version = url.partition("|")
    return base, (version or None) if bar else None


def version_key(version: str | None) -> tuple[Any, ...]:
    """A sort key ordering versions naturally (``1.10.0`` after ``1.9.2``; no version first)."""
    if version is None:
        return ((-1, ""),)
    return tuple((1, int(num), "") if num else (0, 0, text) for num, text in _PART.findall(version))


_DATE = re.compile(r"\d{4}(-\d\d(-\d\d)?)?|\d{8}")


def _comparable(a: str | None, b: str | None) -> bool:
    """Whether two versions follow one scheme (both dates, or neither), so that the newer
    is known; a date (``2018-08-12``) and a semantic version (``4.0.0``) are not ordered,
    and the source found first (the call's, then the repository's, then the core's) is
    used (https://hl7.org/fhir/R4/resource.html#versions: no general version order)."""
    if a is None or b is None:
        return True
    return (_DATE.fullmatch(a) is None) == (_DATE.fullmatch(b) is None)


def version_matches(wanted: str, actual: str | None) -> bool:
    """Whether ``actual`` satisfies ``wanted``: equal, or a pattern whose ``x``/``*`` parts
    match any part (``1.x``, ``1.0.x``, ``1.x.x``; trailing parts of ``actual`` are free)."""
    if actual is None:
        return False
    if wanted == actual:
        return True
    parts, have = wanted.split("."), actual.split(".")
    if not any(p in ("x", "*") for p in parts):
        return False
    if len(have) < len(parts):
        return False
    return all(p in ("x", "*") or p == h for p, h in zip(parts, have, strict=False))


class TerminologyResources:
    """Terminology resources by canonical URL, across the call, the repository and the core.

    Args:
        repository: the FHIR store (None: none).
        core: a function returning the core package's terminology resources (called once,
            lazily: reading the package takes about a second).
        concepts: the concept store holding large code systems (None: none).
        ttl: seconds a repository look-up is reused.
    """

    def __init__(
        self,
        repository: Repository | None = None,
        core: Callable[[], Iterable[dict[str, Any]]] | None = None,
        concepts: ConceptStore | None = None,
        ttl: float = 5.0,
    ) -> None:
        self.repository = repository
        self.concepts = concepts
        self.ttl = ttl
        self._core_loader = core
        self._core: dict[tuple[str, str], list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}
        self._systems: dict[tuple[Any, ...], CodeSystemSource] = {}
        self._finds: dict[
            tuple[str, str, str | None],
            tuple[tuple[float, list[dict[str, Any]]] | None, dict[str, Any] | None],
        ] = {}
        self.overlay: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.generation = 0

    def with_overlay(
        self, resources: Sequence[dict[str, Any]], first: bool = False
    ) -> TerminologyResources:
        """A view that also sees ``resources`` (the ``tx-resource`` parameters of one call).

        Args:
            resources: the resources to add.
            first: put them before the overlay's own (they win over its same
                ``url|version``, e.g. a code system with its supplements merged in).
        """
        if not resources:
            return self
        view = copy.copy(self)
        view._parent = self
        overlay: dict[tuple[str, str], list[dict[str, Any]]] = {
            k: list(v) for k, v in self.overlay.items()
        }
        for resource in resources:
            rtype, url = resource.get("resourceType"), resource.get("url")
            if rtype in TERMINOLOGY_TYPES and isinstance(url, str):
                listed = overlay.setdefault((rtype, url), [])
                if first:
                    listed.insert(0, resource)
                else:
                    listed.append(resource)
        view.overlay = overlay
        return view

    _parent: TerminologyResources | None = None

    def changed(self) -> None:
        """Forget cached look-ups (a terminology resource was written)."""
        with self._lock:
            self._found.clear()
            self._finds.clear()
            self._systems.clear()
            self.generation += 1

    def _core_table(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        table = self._core
        if table is None:
            table = {}
            if self._core_loader is not None:
                for resource in self._core_loader():
                    rtype, url = resource.get("resourceType"), resource.get("url")
                    if rtype in TERMINOLOGY_TYPES and isinstance(url, str):
                        table.setdefault((rtype, url), []).append(resource)
            self._core = table
            if self._parent is not None:
                self._parent._core = table
        return table

    def _stored(self, rtype: str, url: str) -> list[dict[str, Any]]:
        if self.repository is None:
            return []
        key = (rtype, url)
        now = time.monotonic()
        hit = self._found.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        page = self.repository.search(
            SearchQuery(rtype, (SearchClause("url", (url,)),), count=1000, total=False)
        )
        found = []
        for stored in page.resources:
            if stored.data is None:
                continue
            resource = orjson.loads(stored.data)
            if resource.get("url") == url:
                found.append(resource)
        self._found[key] = (now, found)
        return found

    def versions(self, rtype: str, url: str) -> list[dict[str, Any]]:
        """Every resource of this type and URL, call first, then repository, then core."""
        found = list(self.overlay.get((rtype, url), ()))
        found += self._stored(rtype, url)
        found += self._core_table().get((rtype, url), ())
        return found

    def find(self, rtype: str, canonical: str, version: str | None = None) -> dict[str, Any] | None:
        """The resource a canonical reference points at.

        Args:
            rtype: ``CodeSystem``, ``ValueSet`` or ``ConceptMap``.
            canonical: the URL, possibly with ``|version``.
            version: a version (overrides one in ``canonical``); None: the newest.
        """
        url, pinned = split_canonical(canonical)
        version = version or pinned
        if self.overlay:
            return self._find(rtype, url, version)
        # reused while the repository look-up it came from is (same TTL, same clearing)
        key = (rtype, url, version)
        basis = self._found.get((rtype, url))
        memo = self._finds.get(key)
        fresh = basis is not None and time.monotonic() - basis[0] < self.ttl
        if memo is not None and memo[0] is basis and fresh:
            return memo[1]
        found = self._find(rtype, url, version)
        if self.repository is not None:
            self._finds[key] = (self._found.get((rtype, url)), found)
        return found

    def _find(self, rtype: str, url: str, version: str | None) -> dict[str, Any] | None:
        candidates = self.versions(rtype, url)
        if version is not None:
            for resource in candidates:
                if resource.get("version") == version:
                    return resource
            matching = [r for r in candidates if version_matches(version, r.get("version"))]
            if not matching:
                return None
            candidates = matching
        if not candidates:
            return None
        best = candidates[0]
        for resource in candidates[1:]:
            newer = version_key(resource.get("version")) > version_key(best.get("version"))
            if newer and _comparable(resource.get("version"), best.get("version")):
                best = resource
        return best

    def code_system(self, canonical: str, version: str | None = None) -> CodeSystemSource | None:
        """The code system a URL names, indexed (from its resource or the concept store)."""
        resource = self.find("CodeSystem", canonical, version)
        url, pinned = split_canonical(canonical)
        version = version or pinned
        if resource is None or resource.get("content") == "not-present":
            stored = self._from_concept_store(url, version or (resource or {}).get("version"))
            if stored is not None or resource is None:
                return stored
        return self._indexed(resource)

    def _indexed(self, resource: dict[str, Any]) -> CodeSystemSource:
        meta = resource.get("meta") or {}
        if "versionId" in meta and "id" in resource and not self._is_overlay(resource):
            key: tuple[Any, ...] = ("r", resource["id"], meta["versionId"], resource.get("url"))
        elif not self._is_overlay(resource) and self._is_core(resource):
            key = ("core", resource.get("url"), resource.get("version"))
        else:
            return ResourceCodeSystem(resource)
        found = self._systems.get(key)
        if found is None:
            found = ResourceCodeSystem(resource)
            self._systems[key] = found
        return found

    def _is_overlay(self, resource: dict[str, Any]) -> bool:
        return any(resource is r for r in self.overlay.get(("CodeSystem", resource["url"]), ()))

    def _is_core(self, resource: dict[str, Any]) -> bool:
        table = self._core or {}
        return any(resource is r for r in table.get(("CodeSystem", resource["url"]), ()))

    def _from_concept_store(self, url: str, version: str | None) -> CodeSystemSource | None:
        if self.concepts is None:
            return None
        info = self.concepts.system(url, version)
        if info is None:
            return None
        key = ("store", info.url, info.version, self.concepts.generation)
        found = self._systems.get(key)
        if found is None:
            from cmio.terminology.stored import StoredCodeSystem

            found = StoredCodeSystem(self.concepts, info)
            self._systems[key] = found
        return found

    def known_versions(self, rtype: str, url: str) -> list[str]:
        """The versions on file for a URL (for error messages)."""
        versions = {str(r.get("version")) for r in self.versions(rtype, url) if r.get("version")}
        if rtype == "CodeSystem" and self.concepts is not None:
            versions |= {s.version for s in self.concepts.systems() if s.url == url and s.version}
        return sorted(versions, key=version_key)
