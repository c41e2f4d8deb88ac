"""The write-path guard: REST writes cannot edit a governed artifact past ``draft``.

An artifact enters the governed lifecycle when it carries the lifecycle tag
(:data:`cmio.governance.lifecycle.LIFECYCLE_SYSTEM`, written by :class:`Governance`). For
such artifacts a create, update, patch or Bundle entry is refused with an
OperationOutcome naming ``<type>.meta.tag`` or ``<type>.status`` when it would change a
version that is no longer a draft, or set a lifecycle state other than ``draft`` without
``$governance-transition`` (https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html: a new
version is a new resource, history is never rewritten). Artifacts without the tag are
left to the existing checks.

Deletes: :func:`check_delete` refuses (409) to delete a governed artifact that is or has
been approved (``approved``, ``active``, ``retired``): retire it instead; drafts and
versions in review may be deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cmio.governance.lifecycle import GOVERNED_TYPES, LIFECYCLE_SYSTEM, GovernanceError, state_of
from cmio.governance.service import check_edit
from cmio.store.base import GoneError, NotFoundError, Repository
from cmio.terminology.governance import GovernanceIssue

__all__ = ["UNDELETABLE", "LifecycleGuard", "check_delete"]

UNDELETABLE = ("approved", "active", "retired")
"""States whose artifacts cannot be deleted (they are, or have been, approved)."""


def _tagged(resource: Mapping[str, Any]) -> bool:
    return any(
        t.get("system") == LIFECYCLE_SYSTEM for t in (resource.get("meta") or {}).get("tag") or []
    )


class LifecycleGuard:
    """Checks writes of governed artifacts against their lifecycle state.

    Args:
        repository: the FHIR store (to read the current version).
    """

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def check(self, resource: dict[str, Any]) -> list[GovernanceIssue]:
        """The issues (errors) of a write of ``resource``; empty when it may be stored."""
        rtype = resource.get("resourceType")
        if rtype not in GOVERNED_TYPES:
            return []
        current: dict[str, Any] | None = None
        rid = resource.get("id")
        if isinstance(rid, str):
            try:
                stored = self.repository.read(str(rtype), rid)
                current = orjson.loads(stored.data) if stored.data else None
            except (NotFoundError, GoneError):
                current = None
        if current is not None and _tagged(current):
            try:
                check_edit(current, resource)
            except GovernanceError as error:
                return [GovernanceIssue("error", error.code, str(error), error.expression)]
            return []
        if _tagged(resource) and state_of(resource) != "draft":
            return [
                GovernanceIssue(
                    "error",
                    "business-rule",
                    f"A {rtype} enters the lifecycle as a draft; its state "
                    f"('{state_of(resource)}') changes only by $governance-transition",
                    f"{rtype}.meta.tag",
                )
            ]
        return []


def check_delete(resource: Mapping[str, Any]) -> None:
    """Refuse to delete a governed artifact that is or has been approved.

    https://hl7.org/fhir/uv/crmi/artifact-lifecycle.html: an approved or active artifact
    is retired, never removed (history is never rewritten). Only artifacts carrying the
    lifecycle tag are checked.

    Raises:
        GovernanceError: 409, expression ``<type>.status``.
    """
    rtype = resource.get("resourceType")
    if rtype not in GOVERNED_TYPES or not _tagged(resource):
        return
    state = state_of(resource)
    if state in UNDELETABLE:
        raise GovernanceError(
            409,
            "business-rule",
            f"{rtype}/{resource.get('id')} is '{state}': an artifact that is or has been "
            "approved cannot be deleted; retire it instead",
            f"{rtype}.status",
        )
