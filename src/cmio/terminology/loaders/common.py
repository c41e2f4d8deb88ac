"""What every loader shares: release fingerprints and CodeSystem resources.

Large code systems are stored as CodeSystem resources with ``content:
not-present`` and ``count`` (https://hl7.org/fhir/R4/codesystem-definitions.html#CodeSystem.content),
their concepts in the :class:`~cmio.terminology.concepts.ConceptStore`. Every
terminology resource carries ``status``, ``version``, ``date`` and ``publisher``
(https://hl7.org/fhir/R4/resource.html#canonical).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmio.store.base import Repository
from cmio.terminology.concepts import Concept, ConceptStore, SystemInfo

__all__ = [
    "LoadResult",
    "Progress",
    "codesystem_resource",
    "fingerprint_files",
    "load_system",
    "put_resources",
    "resource_id",
]

Progress = Callable[[int], None]
"""Called with a running count of items read."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one loader run did.

    Attributes:
        url: code system url.
        version: code system version.
        count: concepts in the store for that version.
        skipped: True when the same release was already loaded (nothing changed).
    """

    url: str
    version: str | None
    count: int
    skipped: bool


def fingerprint_files(paths: Iterable[Path], extra: str = "") -> str:
    """A digest of file names, sizes and modification-independent contents.

    Hashes the bytes of every file (a release is loaded once, so reading it twice
    costs little next to parsing it) plus ``extra`` (the loader's format version).
    """
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def resource_id(url: str, version: str | None) -> str:
    """A stable FHIR id (``[A-Za-z0-9\\-.]{1,64}``) for a canonical url and version."""
    base = re.sub(r"[^A-Za-z0-9.-]+", "-", url.split("://", 1)[-1]).strip("-")
    tail = hashlib.sha1(f"{url}|{version or ''}".encode()).hexdigest()[:10]
    return f"{base[: 64 - 11]}-{tail}"


def codesystem_resource(
    info: SystemInfo,
    *,
    publisher: str,
    date: str,
    status: str = "active",
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``content: not-present`` CodeSystem resource describing a store-held system."""
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": resource_id(info.url, info.version),
        "url": info.url,
        "status": status,
        "date": date,
        "publisher": publisher,
        "content": "not-present",
        "count": info.count,
    }
    if info.version:
        resource["version"] = info.version
    if info.name:
        resource["name"] = info.name
    if info.title:
        resource["title"] = info.title
    if description:
        resource["description"] = description
    if info.hierarchy_meaning:
        resource["hierarchyMeaning"] = info.hierarchy_meaning
    if info.properties:
        resource["property"] = [
            {"code": code, "type": kind, **({"description": desc} if desc else {})}
            for code, kind, desc in info.properties
        ]
    resource.update(extra or {})
    return resource


def load_system(
    store: ConceptStore,
    info: SystemInfo,
    concepts: Callable[[], Iterator[Concept]],
    fingerprint: str,
    progress: Progress | None = None,
    *,
    force: bool = False,
    unindexed: Collection[str] = (),
) -> LoadResult:
    """Load one system version unless the same release (fingerprint) is already there."""
    existing = store.system(info.url, info.version)
    if (
        not force
        and existing is not None
        and existing.version == info.version
        and store.fingerprint(info.url, info.version) == fingerprint
    ):
        return LoadResult(info.url, info.version, existing.count, True)
    count = store.load(info, concepts(), progress, fingerprint=fingerprint, unindexed=unindexed)
    return LoadResult(info.url, info.version, count, False)


def put_resources(
    repository: Repository,
    resources: Iterable[dict[str, Any]],
    progress: Progress | None = None,
    batch: int = 200,
) -> int:
    """Write terminology resources (each with an ``id``) into the FHIR repository.

    Uses :meth:`~cmio.store.base.Transaction.put_many`, so a resource equal to its
    stored version is not written again (a re-run changes nothing).

    Returns:
        The number of resources passed.
    """
    done = 0
    chunk: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal done
        if chunk:
            with repository.transaction() as tx:
                tx.put_many(chunk)
            done += len(chunk)
            chunk.clear()
            if progress is not None:
                progress(done)

    for resource in resources:
        chunk.append(resource)
        if len(chunk) >= batch:
            flush()
    flush()
    return done
