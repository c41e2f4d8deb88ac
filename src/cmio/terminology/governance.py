"""Governance hooks on terminology resources written to the FHIR store.

A published value set, code system or concept map is identified by ``url`` and
``version`` (https://hl7.org/fhir/R4/resource.html#versions,
https://hl7.org/fhir/R4/valueset.html#versioning): once stored, a given
``url|version`` never changes content. Changing the content is a new version: the
writer must change ``version`` (the old version stays readable, pinned as
``url|version``), otherwise the write is refused with an OperationOutcome naming
``version``. ``status``, ``version``, ``date`` and ``publisher`` are expected on
every terminology resource; a missing one is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cmio.store.base import GoneError, NotFoundError, Repository
from cmio.terminology.resources import TERMINOLOGY_TYPES, TerminologyResources

__all__ = ["GovernanceIssue", "TerminologyGovernance", "content_of"]

_BOOKKEEPING = frozenset({"meta", "text", "id", "status", "date"})
"""Not content: bookkeeping and the lifecycle (``status``/``date`` change without a new version)."""


@dataclass(frozen=True, slots=True)
class GovernanceIssue:
    """One finding, shaped like the validator's issues (severity, code, message, expression)."""

    severity: str
    code: str
    message: str
    expression: str | None = None


def content_of(resource: dict[str, Any]) -> bytes:
    """The resource without bookkeeping and lifecycle elements, canonically encoded."""
    body = {k: v for k, v in resource.items() if k not in _BOOKKEEPING}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class TerminologyGovernance:
    """Checks writes of CodeSystem, ValueSet and ConceptMap resources.

    Args:
        repository: the FHIR store (to read the current version).
        resources: the terminology resources whose caches a write invalidates.
    """

    def __init__(self, repository: Repository, resources: TerminologyResources) -> None:
        self.repository = repository
        self.resources = resources

    def check(self, resource: dict[str, Any]) -> list[GovernanceIssue]:
        """Issues for a resource about to be written (empty for other types)."""
        rtype = resource.get("resourceType")
        if rtype not in TERMINOLOGY_TYPES:
            return []
        self.resources.changed()
        issues = [
            GovernanceIssue(
                "warning",
                "required",
                f"A {rtype} should have '{name}' (governance)",
                f"{rtype}.{name}",
            )
            for name in ("status", "version", "date", "publisher")
            if name not in resource
        ]
        rid = resource.get("id")
        if not isinstance(rid, str):
            return issues
        try:
            current = self.repository.read(str(rtype), rid)
        except (NotFoundError, GoneError):
            return issues
        if current.data is None:
            return issues
        before = orjson.loads(current.data)
        same_version = before.get("url") == resource.get("url") and before.get(
            "version"
        ) == resource.get("version")
        if same_version and content_of(before) != content_of(resource):
            label = f"{resource.get('url')}|{resource.get('version')}"
            issues.append(
                GovernanceIssue(
                    "error",
                    "business-rule",
                    f"{rtype}/{rid} ({label}) is already stored with other content; a change "
                    "must be a new version: give it a new 'version' (or a new resource)",
                    f"{rtype}.version",
                )
            )
        return issues
