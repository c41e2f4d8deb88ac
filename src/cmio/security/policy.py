"""Authorization decisions: may this grant do this interaction on this resource?

Framework-free (layer 5: the model and the store, never the API). A
:class:`Policy` is built per request from the caller's
:class:`~cmio.security.grant.AccessGrant`; it answers

* :meth:`Policy.access`: how far a permission (``c r u d s``) on a type reaches for
  this grant (None: not at all, a 403), as an :class:`Access`: the patients whose
  compartment it is confined to, the query narrowing to AND into searches, whether only
  aggregate (non patient-level) data may be seen;
* :meth:`Policy.check`: allow, deny (403) or hide (404, so that existence does not
  leak) for one resource;
* :meth:`Policy.operation` and :meth:`Policy.export`: named operations and Bulk Data.

Rules (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):

* scopes grant, per context, ``c r u d s`` on types; a query-narrowed scope grants only
  the resources matching its search parameters;
* ``patient/`` scopes reach the Patient compartment of ``grant.patient``
  (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) and types outside
  the compartment (Practitioner, Medication ...);
* a user's roles gate the token's scopes (:class:`~cmio.security.roles.RoleTable`);
  relationship roles (clinician) see patient-level data of the patients they treat:
  ``Patient.generalPractitioner``, an ``Encounter.participant`` or a ``CareTeam``
  member; others only with break-the-glass (``grant.break_glass`` set by the API);
  aggregate roles (executive) never see a resource in a Patient compartment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson

from cmio.indexing.compartments import COMPARTMENT_PARAM, CompartmentIndexer
from cmio.model import Model
from cmio.security.decisions import (
    ALLOW,
    EXPLICIT_TYPES,
    INTERACTIONS,
    MAX_RELATED_PATIENTS,
    RELATIONSHIPS,
    TERMINOLOGY_OPERATIONS,
    Access,
    Decision,
    Effect,
    split_values,
)
from cmio.security.grant import AccessGrant
from cmio.security.roles import RoleTable
from cmio.security.scopes import Context, Narrowing, ScopeSet
from cmio.store.base import GoneError, NotFoundError, Repository, SearchClause, SearchQuery

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
    "Policy",
    "split_values",
]

_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_WIDE: tuple[Context, ...] = ("user", "system")


def _naming(scopes: ScopeSet, rtype: str) -> ScopeSet:
    """The scopes of ``scopes`` that name ``rtype`` itself."""
    return ScopeSet(tuple(s for s in scopes.scopes if s.resource_type == rtype), scopes.other)


class Policy:
    """The authorization decisions of one request (relationships cached for its duration).

    Args:
        grant: the caller's grant (``break_glass`` set when the API accepted a reason).
        repository: the store (relationship searches).
        model: the FHIR model (the Patient CompartmentDefinition).
        roles: the organization's role table (defaults when None).
    """

    def __init__(
        self,
        grant: AccessGrant,
        repository: Repository,
        model: Model,
        roles: RoleTable | None = None,
    ) -> None:
        self.grant = grant
        self.repository = repository
        self.model = model
        self.roles = roles if roles is not None else RoleTable()
        self.scopes = ScopeSet.parse(grant.scopes)
        known = self.roles.known(grant.roles) if grant.kind == "user" else frozenset()
        self._role_scopes = {r: ScopeSet.parse(self.roles.scopes_by_role[r]) for r in known}
        self._related: frozenset[str] | None = None
        self._related_one: dict[str, bool] = {}
        self._compartment_types: frozenset[str] | None = None
        self._indexer: CompartmentIndexer | None = None
        self._access: dict[tuple[str, str], Access | None] = {}

    # -- type level -------------------------------------------------------------------

    def compartment_types(self) -> frozenset[str]:
        """Resource types that belong to the Patient compartment (Patient included)."""
        if self._compartment_types is None:
            definition = self.model.compartments["Patient"].resources
            types = frozenset(t for t, params in definition.items() if params)
            self._compartment_types = types | {"Patient"}
        return self._compartment_types

    def can_break_glass(self) -> bool:
        """Whether the grant's roles may invoke break-the-glass access."""
        return bool(set(self._role_scopes) & self.roles.break_glass_roles)

    def access(self, permission: str, rtype: str) -> Access | None:
        """How far ``permission`` (one of ``cruds``) on ``rtype`` reaches; None: denied.

        ``rtype`` ``*`` asks about every type at once (system-level interactions).
        """
        key = (permission, rtype)
        if key not in self._access:
            self._access[key] = self._compute_access(permission, rtype)
        return self._access[key]

    def _compute_access(self, permission: str, rtype: str) -> Access | None:
        if self.grant.kind == "local":
            return Access(in_compartment=rtype == "*" or rtype in self.compartment_types())
        scopes, role_scopes = self.scopes, self._role_scopes
        if rtype in EXPLICIT_TYPES:  # wildcards do not reach the audit trail
            scopes = _naming(scopes, rtype)
            role_scopes = {r: _naming(s, rtype) for r, s in role_scopes.items()}
        contexts = scopes.contexts_for(permission, rtype)
        if not contexts:
            return None
        in_compartment = rtype == "*" or rtype in self.compartment_types()
        groups: list[tuple[Narrowing, ...]] = []
        patients: frozenset[str] | None = None
        if contexts & set(_WIDE):
            narrowing = scopes.narrowing(permission, rtype, _WIDE)
        else:  # patient/ scopes only: the launch patient's compartment
            if self.grant.patient is None:
                return None
            narrowing = scopes.narrowing(permission, rtype, ("patient",))
            if in_compartment:
                patients = frozenset({self.grant.patient})
        if narrowing:
            groups.append(narrowing)
        aggregate = related = False
        if role_scopes:  # a user's roles cap what the token's scopes grant
            granting = [r for r, s in role_scopes.items() if s.allows(permission, rtype)]
            if not granting:
                return None
            alternatives: list[Narrowing] = []
            for role in granting:
                found = role_scopes[role].narrowing(permission, rtype)
                if found is None:
                    alternatives = []
                    break
                alternatives.extend(found)
            if alternatives:
                groups.append(tuple(dict.fromkeys(alternatives)))
            aggregate = all(r in self.roles.aggregate_roles for r in granting)
            bound = all(r in self.roles.relationship_roles for r in granting)
            related = bound and in_compartment and self.grant.break_glass is None
        return Access(patients, tuple(groups), aggregate, in_compartment, related)

    # -- resource level ---------------------------------------------------------------

    def check(self, interaction: str, resource: dict[str, Any], *, exists: bool = True) -> Decision:
        """Decide an interaction (see :data:`INTERACTIONS`) on one resource.

        ``exists``: the resource is stored (a failure hides it: 404), or it is the new
        content of a create/update (a failure is a 403).
        """
        permission = INTERACTIONS[interaction]
        rtype = str(resource.get("resourceType", ""))
        access = self.access(permission, rtype)
        if access is None:
            return self.denied(permission, rtype)
        return self.check_access(access, resource, exists=exists)

    def check_access(
        self, access: Access, resource: dict[str, Any], *, exists: bool = True
    ) -> Decision:
        """Whether ``resource`` is within ``access`` (allow, else hide or deny)."""
        if access.unrestricted:
            return ALLOW
        fail = Decision("hide" if exists else "deny", "outside what the grant may reach")
        rtype = str(resource.get("resourceType", ""))
        if rtype in self.compartment_types() and (
            access.patients is not None or access.aggregate_only or access.related
        ):
            members = self.members(resource)
            if access.aggregate_only and members:
                return fail
            if access.patients is not None:
                members &= access.patients
                if not members:
                    return fail
            if access.related and not self.is_related(members):
                return fail
        for group in access.narrowing:
            if not any(self.matches(resource, alternative) for alternative in group):
                return fail
        return ALLOW

    def denied(self, permission: str, rtype: str) -> Decision:
        """The 403 decision for a permission the grant lacks."""
        what = "any resource type" if rtype == "*" else rtype
        return Decision("deny", f"The access token does not allow {_NAMES[permission]} on {what}")

    def members(self, resource: dict[str, Any]) -> frozenset[str]:
        """The patients whose compartment ``resource`` is in (from the CompartmentDefinition)."""
        if self._indexer is None:
            indexer = self.repository.indexer
            self._indexer = (
                indexer
                if isinstance(indexer, CompartmentIndexer)
                else CompartmentIndexer(self.model)
            )
        rows = CompartmentIndexer.rows(self._indexer, resource)
        return frozenset(r.value for r in rows if r.param == COMPARTMENT_PARAM)

    def matches(self, resource: dict[str, Any], narrowing: Narrowing) -> bool:
        """Whether ``resource`` matches all the search parameters of ``narrowing``."""
        from cmio.indexing.extract import SearchIndexer
        from cmio.search.memory import MemoryIndex

        indexer = self.repository.indexer
        if not isinstance(indexer, SearchIndexer):
            indexer = SearchIndexer(self.model, full_text=False)
        rtype = str(resource.get("resourceType", ""))
        clauses = tuple(SearchClause(k, split_values(v)) for k, v in narrowing)
        try:
            found = MemoryIndex(indexer, [resource]).search(SearchQuery(rtype, clauses))
        except Exception:  # a narrowing the matcher cannot evaluate grants nothing
            return False
        return bool(found)

    # -- relationships ----------------------------------------------------------------

    def related_patients(self) -> frozenset[str]:
        """The patients the user (``grant.fhir_user``) has a treatment relationship with.

        Their general practitioner, a participant of one of their Encounters, or a member
        of one of their CareTeams; searched once per request.
        """
        if self._related is None:
            self._related = self._find_related()
        return self._related

    def is_related(self, patients: Iterable[str]) -> bool:
        """Whether the user treats one of ``patients`` (searched per patient and cached,
        unless the whole set is known already)."""
        wanted = set(patients)
        if self._related is not None:
            return bool(wanted & self._related)
        if any(self._related_one.get(p) for p in wanted):
            return True
        for patient in sorted(wanted - set(self._related_one)):
            self._related_one[patient] = self._treats(patient)
            if self._related_one[patient]:
                return True
        return False

    def _treats(self, patient: str) -> bool:
        """One patient: their general practitioner (read from the Patient), else an
        Encounter or CareTeam search."""
        who = self._who()
        if who is None:
            return False
        try:
            stored = self.repository.read("Patient", patient)
        except (NotFoundError, GoneError):
            return False
        data = orjson.loads(stored.data or b"{}")
        for ref in data.get("generalPractitioner") or ():
            target = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(target, str) and "/".join(target.split("/")[-2:]) == who:
                return True
        return bool(self._relationship_search((patient,), 1, RELATIONSHIPS[1:]))

    def _who(self) -> str | None:
        parts = [p for p in (self.grant.fhir_user or "").split("/") if p]
        return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else None

    def _relationship_search(
        self, ids: tuple[str, ...], limit: int, keys: tuple[str, ...] = RELATIONSHIPS
    ) -> set[str]:
        who = self._who()
        if who is None:
            return set()
        found: set[str] = set()
        for key in keys:
            clauses: tuple[SearchClause, ...] = (SearchClause(key, (who,)),)
            if ids:
                clauses = (SearchClause("_id", ids), *clauses)
            query = SearchQuery("Patient", clauses, limit, 0, (), False)
            found.update(s.id for s in self.repository.search(query).resources)
            if ids and found:
                break
        return found

    def _find_related(self) -> frozenset[str]:
        return frozenset(self._relationship_search((), MAX_RELATED_PATIENTS))

    def _unbroken(self) -> Policy:
        """The same grant without break-the-glass."""
        return Policy(
            replace(self.grant, break_glass=None), self.repository, self.model, self.roles
        )

    # -- operations -------------------------------------------------------------------

    def operation(self, name: str, rtype: str | None, *, subject_level: bool = False) -> Decision:
        """Decide a named operation (``$name``) invoked on ``rtype`` (None: system level).

        Terminology operations: any caller. ``$reindex``: administrators (or an
        unauthenticated local caller). ``$validate``: any permission on the type.
        ``$evaluate-measure`` for a population (``subject_level`` False): ``user/`` or
        ``system/`` read of Measure (aggregates, e.g. executives); for a subject, and
        ``$care-gaps``, ``$viewdefinition-*``, ``$impact``: unrestricted read and search of
        every type;
        any other operation: unrestricted read and search of its type.
        """
        if name in TERMINOLOGY_OPERATIONS:
            return ALLOW
        if name == "reindex":
            if self.grant.kind == "local" or "administrator" in self._role_scopes:
                return ALLOW
            return Decision("deny", "$reindex is reserved to administrators")
        target = rtype or "*"
        if self.grant.break_glass is not None and name != "validate":  # patients only
            return self._unbroken().operation(name, rtype, subject_level=subject_level)
        if name == "validate":
            if any(self.access(p, target) is not None for p in "cruds"):
                return ALLOW
            return Decision("deny", f"The access token grants nothing on {target}")
        if name == "evaluate-measure" and not subject_level:
            wide = self.scopes.contexts_for("r", "Measure") & set(_WIDE)
            if wide and self.access("r", "Measure") is not None:
                return ALLOW
            return Decision("deny", "$evaluate-measure needs user/ or system/ read of Measure")
        if name.startswith("viewdefinition") or name in ("evaluate-measure", "care-gaps", "impact"):
            target = "*"  # they read the data of many patients
        for permission in "rs":
            access = self.access(permission, target)
            if access is None or not access.unrestricted:
                return Decision(
                    "deny", f"${name} needs unrestricted read and search of the data it reads"
                )
        return ALLOW

    def export(self, types: Iterable[str] | None) -> Decision:
        """Decide a Bulk Data ``$export`` of ``types`` (None: every type).

        Needs ``user/`` or ``system/`` read and search scopes reaching every resource of
        each type (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/authorization/index.html).
        """
        if self.grant.break_glass is not None:  # break-the-glass does not extend to bulk data
            return self._unbroken().export(types)
        for rtype in types or ("*",):
            for permission in "rs":
                wide = self.scopes.contexts_for(permission, rtype) & set(_WIDE)
                access = self.access(permission, rtype)
                if not wide or access is None or not access.unrestricted:
                    what = "every type" if rtype == "*" else rtype
                    return Decision(
                        "deny",
                        f"Bulk export of {what} needs user/ or system/ read and search scopes"
                        " over all its resources",
                    )
        return ALLOW
