"""Build the terminology service of one server.

The service reads CodeSystem/ValueSet/ConceptMap resources from the FHIR store and
from the R4 core package (https://hl7.org/fhir/R4/terminologies-systems.html,
https://hl7.org/fhir/R4/terminologies-valuesets.html), and large code systems from
the concept store when its file exists.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cmio.model.cache import default_cache_dir
from cmio.model.package import file_sha256, find_package_tarball
from cmio.store.base import Repository
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import TerminologyService

__all__ = ["core_terminology", "open_terminology"]

_log = logging.getLogger(__name__)
_CACHE_FORMAT = 1


def core_terminology() -> Iterator[dict[str, Any]]:
    """The CodeSystems and ValueSets of the ``hl7.fhir.r4.core`` package.

    Reading them from the package tarball parses every conformance resource (seconds);
    the terminology subset is therefore kept as one JSON file next to the model cache
    (``$CMIO_CACHE_DIR``), keyed by the tarball's digest and written atomically, so a
    server's first binding check costs a fraction of a second.
    """
    tarball = find_package_tarball()
    cache = default_cache_dir() / (
        f"r4-core-terminology-{file_sha256(tarball)[:32]}-{_CACHE_FORMAT}.json"
    )
    try:
        cached = orjson.loads(cache.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        cached = None
    if isinstance(cached, list):
        yield from cached
        return
    from cmio.validation.packages import load_package

    found = [
        resource
        for resource in load_package(tarball).resources
        if resource.get("resourceType") in ("CodeSystem", "ValueSet")
    ]
    _write_atomically(cache, orjson.dumps(found))
    yield from found


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache directory only costs speed
        _log.warning("cannot write the core terminology cache %s: %s", path, exc)


def open_terminology(
    repository: Repository | None,
    concept_db: str | Path | None = None,
    *,
    core: bool = True,
    max_expansion: int = 10_000,
) -> TerminologyService:
    """The terminology service over a repository, the core package and a concept store.

    Args:
        repository: the FHIR store (None: none).
        concept_db: the concept store file; used only when it exists.
        core: also answer from the R4 core package.
        max_expansion: largest expansion returned without paging.
    """
    concepts = None
    if concept_db is not None and Path(concept_db).is_file():
        from cmio.terminology.concepts import ConceptStore

        concepts = ConceptStore(concept_db)
    resources = TerminologyResources(
        repository, core_terminology if core else None, concepts=concepts
    )
    return TerminologyService(resources, max_expansion=max_expansion)
