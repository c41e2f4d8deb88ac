"""The organization's roles and the SMART scopes each one is granted.

A user's token carries the union of the scopes of their roles (narrowed by
what the client asked for). The mapping is data, passed around as a
:class:`RoleTable`, so an organization can configure its own.
See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "AGGREGATE_ROLES",
    "BREAK_GLASS_ROLES",
    "DEFAULT_ROLE_SCOPES",
    "RELATIONSHIP_ROLES",
    "ROLES",
    "RoleTable",
]

ROLES: tuple[str, ...] = (
    "clinician",
    "informaticist",
    "analyst",
    "integration-engineer",
    "executive",
    "administrator",
    "privacy-officer",
)
"""The built-in roles (issue 9): who uses cmio."""

DEFAULT_ROLE_SCOPES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # Physicians read and write the chart of the patients they care for.
        "clinician": frozenset({"openid", "fhirUser", "user/*.cruds"}),
        # Vocabulary, rules, measures and views; clinical data read-only.
        "informaticist": frozenset(
            {
                "openid",
                "fhirUser",
                "user/*.rs",
                "user/ValueSet.cruds",
                "user/CodeSystem.cruds",
                "user/ConceptMap.cruds",
                "user/Measure.cruds",
                "user/Library.cruds",
                "user/PlanDefinition.cruds",
                "user/Basic.cruds",
                "user/SearchParameter.cruds",
                "user/Task.cruds",
                "user/Provenance.cruds",
            }
        ),
        # Analytics: everything readable, exports included (de-identified by policy).
        "analyst": frozenset({"openid", "fhirUser", "user/*.rs"}),
        # Feeds, imports and interface monitoring.
        "integration-engineer": frozenset({"openid", "fhirUser", "user/*.cruds"}),
        # Aggregates only: measures and reports, no patient-level data.
        "executive": frozenset(
            {
                "openid",
                "fhirUser",
                "user/Measure.rs",
                # summary reports only: an individual report has a subject
                "user/MeasureReport.rs?subject:missing=true",
                "user/Organization.rs",
                "user/Location.rs",
            }
        ),
        "administrator": frozenset({"openid", "fhirUser", "user/*.cruds"}),
        # Reads the audit trail.
        "privacy-officer": frozenset(
            {"openid", "fhirUser", "user/AuditEvent.rs", "user/Patient.rs"}
        ),
    }
)


RELATIONSHIP_ROLES: frozenset[str] = frozenset({"clinician"})
"""Roles that see patient-level data only of the patients they have a treatment
relationship with (general practitioner, encounter participant, care team member)."""

BREAK_GLASS_ROLES: frozenset[str] = frozenset({"clinician", "administrator"})
"""Roles that may invoke break-the-glass access (``X-Break-Glass: <reason>``)."""

AGGREGATE_ROLES: frozenset[str] = frozenset({"executive"})
"""Roles that never see patient-level data (a resource in a Patient compartment)."""


@dataclass(frozen=True, slots=True)
class RoleTable:
    """Roles and their scopes (the defaults, or an organization's own).

    Attributes:
        scopes_by_role: each role's SMART scopes.
        relationship_roles: roles confined to the patients they treat (see
            :data:`RELATIONSHIP_ROLES`).
        break_glass_roles: roles that may invoke break-the-glass access.
        aggregate_roles: roles that see aggregates only, never patient-level data.
    """

    scopes_by_role: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: DEFAULT_ROLE_SCOPES
    )
    relationship_roles: frozenset[str] = RELATIONSHIP_ROLES
    break_glass_roles: frozenset[str] = BREAK_GLASS_ROLES
    aggregate_roles: frozenset[str] = AGGREGATE_ROLES

    def known(self, roles: Iterable[str]) -> frozenset[str]:
        """The roles of ``roles`` this table defines (unknown ones are ignored)."""
        return frozenset(r for r in roles if r in self.scopes_by_role)

    def scopes_for(self, roles: Iterable[str]) -> frozenset[str]:
        """The union of the scopes of ``roles``; an unknown role raises ``KeyError``."""
        granted: set[str] = set()
        for role in roles:
            granted |= self.scopes_by_role[role]
        return frozenset(granted)
