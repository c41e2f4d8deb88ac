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

__all__ = ["DEFAULT_ROLE_SCOPES", "ROLES", "RoleTable"]

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
                "user/MeasureReport.rs",
                "user/Organization.rs",
            }
        ),
        "administrator": frozenset({"openid", "fhirUser", "user/*.cruds"}),
        # Reads the audit trail.
        "privacy-officer": frozenset(
            {"openid", "fhirUser", "user/AuditEvent.rs", "user/Patient.rs"}
        ),
    }
)


@dataclass(frozen=True, slots=True)
class RoleTable:
    """Roles and their scopes (the defaults, or an organization's own)."""

    scopes_by_role: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: DEFAULT_ROLE_SCOPES
    )

    def scopes_for(self, roles: Iterable[str]) -> frozenset[str]:
        """The union of the scopes of ``roles``; an unknown role raises ``KeyError``."""
        granted: set[str] = set()
        for role in roles:
            granted |= self.scopes_by_role[role]
        return frozenset(granted)
