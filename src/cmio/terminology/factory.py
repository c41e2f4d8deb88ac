"""Build the terminology service of one server.

The service reads CodeSystem/ValueSet/ConceptMap resources from the FHIR store and
from the R4 core package (https://hl7.org/fhir/R4/terminologies-systems.html,
https://hl7.org/fhir/R4/terminologies-valuesets.html), and large code systems from
the concept store when its file exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cmio.store.base import Repository
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import TerminologyService

__all__ = ["core_terminology", "open_terminology"]


def core_terminology() -> Iterator[dict[str, Any]]:
    """The CodeSystems and ValueSets of the ``hl7.fhir.r4.core`` package."""
    from cmio.validation.packages import core_package

    for resource in core_package().resources:
        if resource.get("resourceType") in ("CodeSystem", "ValueSet"):
            yield resource


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
