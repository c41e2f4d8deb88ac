"""Authorization vocabulary: decisions, reach of a permission, interactions and relationships.

The values :class:`~cmio.security.policy.Policy` decides with and answers in, kept apart from
its logic. SMART scopes: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html .
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cmio.security.scopes import Narrowing

__all__ = [
    "ALLOW",
    "EXPLICIT_TYPES",
    "INTERACTIONS",
    "MAX_RELATED_PATIENTS",
    "RELATIONSHIPS",
    "TERMINOLOGY_OPERATIONS",
    "Access",
    "Decision",
    "Effect",
    "split_values",
]

Effect = Literal["allow", "deny", "hide"]

INTERACTIONS: dict[str, str] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
"""Interaction -> SMART v2 permission (scopes-and-launch-context.html#scopes-for-requesting-fhir-resources)."""

TERMINOLOGY_OPERATIONS = frozenset({"expand", "validate-code", "lookup", "subsumes", "translate"})
"""Operations any authenticated caller may invoke (terminology is not patient data)."""

RELATIONSHIPS = (
    "general-practitioner",
    "_has:Encounter:patient:participant",
    "_has:CareTeam:patient:participant",
)
"""Patient searches finding the patients a practitioner treats (value: the practitioner)."""

MAX_RELATED_PATIENTS = 10_000
"""How many patients one relationship search collects for a clinician."""

EXPLICIT_TYPES = frozenset({"AuditEvent"})
"""Types reached only by scopes that name them (``user/AuditEvent.rs``), never by ``*``."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorization outcome: ``allow``, ``deny`` (403) or ``hide`` (404).

    Attributes:
        effect: the outcome.
        reason: why (for the OperationOutcome of a 403 and for audit; never shown for 404).
    """

    effect: Effect
    reason: str = ""

    @property
    def allowed(self) -> bool:
        """True for ``allow``."""
        return self.effect == "allow"


ALLOW = Decision("allow")


@dataclass(frozen=True, slots=True)
class Access:
    """How far one permission on one type reaches for a grant.

    Attributes:
        patients: resources of Patient-compartment types are visible only when in the
            compartment of one of these patients (None: any patient).
        narrowing: groups AND-ed; a resource must match one alternative of each group
            (each alternative's search parameters AND-ed).
        aggregate_only: resources in any Patient compartment are never visible.
        in_compartment: the type belongs to the Patient compartment.
        related: resources of Patient-compartment types are visible only when in the
            compartment of a patient the user treats (:meth:`Policy.is_related`).
    """

    patients: frozenset[str] | None = None
    narrowing: tuple[tuple[Narrowing, ...], ...] = ()
    aggregate_only: bool = False
    in_compartment: bool = False
    related: bool = False

    @property
    def unrestricted(self) -> bool:
        """Every resource of the type is reachable."""
        return (
            self.patients is None
            and not self.related
            and not self.narrowing
            and not self.aggregate_only
        )


def split_values(value: str) -> tuple[str, ...]:
    """OR-ed search values: split on commas not escaped as ``\\,``."""
    parts = value.replace("\\,", "\0").split(",")
    return tuple(p.replace("\0", ",") for p in parts if p)
