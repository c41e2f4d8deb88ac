"""Value-set change: both expansions, and the resources whose coded elements newly match
or no longer match.

Expansions come from the terminology service
(https://hl7.org/fhir/R4/valueset-operation-expand.html). Only resources holding one of
the codes that differ between the two expansions can change; they are found through the
token search index (one search per coded search parameter of the clinical resource
types, https://hl7.org/fhir/R4/search.html#token), then each candidate's token values
per parameter are compared with both expansions: a resource *newly matches* when some
coded element (search parameter) matches the proposed expansion and did not match the
active one, and *no longer matches* in the opposite case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cmio.governance.impact_model import ResourceShift
from cmio.indexing.compartments import COMPARTMENT_PARAM
from cmio.indexing.extract import SearchIndexer
from cmio.model import Model
from cmio.store.base import Repository, SearchClause, SearchQuery
from cmio.terminology.service import TerminologyService
from cmio.views.valuesets import ExpansionMembership

__all__ = [
    "CLINICAL_TYPES",
    "Members",
    "PinnedTerminology",
    "expand_members",
    "resource_shifts",
]

Members = frozenset[tuple[str, str]]

CLINICAL_TYPES: tuple[str, ...] = (
    "AllergyIntolerance", "CarePlan", "CareTeam", "Claim", "ClinicalImpression", "Condition",
    "Coverage", "DetectedIssue", "Device", "DeviceRequest", "DiagnosticReport",
    "DocumentReference", "Encounter", "EpisodeOfCare", "ExplanationOfBenefit",
    "FamilyMemberHistory", "Goal", "Immunization", "ImmunizationRecommendation", "Medication",
    "MedicationAdministration", "MedicationDispense", "MedicationRequest",
    "MedicationStatement", "NutritionOrder", "Observation", "Patient", "Procedure",
    "QuestionnaireResponse", "RiskAssessment", "ServiceRequest", "Specimen",
)  # fmt: skip
"""The resource types searched for coded elements by default (patient data)."""

_SKIPPED_PARAMS = ("identifier", "status")
_CHUNK = 200


def expand_members(service: TerminologyService, valueset: Mapping[str, Any] | None) -> Members:
    """The ``(system, code)`` members of a ValueSet resource (empty for None).

    Code systems the service does not hold in full are supplied as fragments of the
    codes the value set names (as the measures do, :mod:`cmio.measures.valuesets`).

    Raises:
        TerminologyError: the value set cannot be expanded.
    """
    if valueset is None:
        return frozenset()
    from cmio.measures.valuesets import fragment_code_systems

    resource = dict(valueset)
    overlay = [resource, *fragment_code_systems([resource], service.resources)]
    resources = service.resources.with_overlay(overlay)
    return frozenset(service.expansion(resource, resources=resources).members)


class PinnedTerminology:
    """The terminology service with one value set's expansion pinned.

    Answers ``expand`` (views, :class:`cmio.views.valuesets.ValueSetExpander`) and
    ``member_of`` (FHIRPath, rules) with ``members`` for ``url`` (any version) and asks
    ``fallback`` for every other value set.

    Args:
        url: the canonical URL of the pinned value set.
        members: its members.
        fallback: the expander for the others (e.g.
            :class:`cmio.terminology.providers.ServiceTerminology`), None: unknown.
    """

    def __init__(self, url: str, members: Members, fallback: Any = None) -> None:
        self.url = url
        self.members = members
        self.fallback = fallback
        self._membership = ExpansionMembership(self)

    def expand(self, valueset: str) -> Iterable[tuple[str, str]]:
        """The members of ``valueset`` (a canonical URL, optionally ``|version``)."""
        if valueset.partition("|")[0] == self.url:
            return sorted(self.members)
        if self.fallback is None:
            raise LookupError(f"Unknown value set {valueset!r}")
        return list(self.fallback.expand(valueset))

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        """FHIRPath ``memberOf()`` (https://hl7.org/fhir/R4/fhirpath.html#functions)."""
        return self._membership.member_of(code, valueset)


@dataclass(slots=True)
class _Tally:
    newly: dict[str, str]
    gone: dict[str, str]
    newly_patients: set[str]
    gone_patients: set[str]
    elements: set[str]


def _token_params(model: Model, rtype: str) -> list[str]:
    try:
        params = model.search_params_for(rtype)
    except KeyError:
        return []
    return sorted(
        code
        for code, spd in params.items()
        if spd.type == "token" and not code.startswith("_") and code not in _SKIPPED_PARAMS
    )


def _candidates(
    repository: Repository, rtype: str, params: Sequence[str], codes: Sequence[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    values = [f"{system}|{code}" for system, code in sorted(codes)]
    found: dict[str, dict[str, Any]] = {}
    for param in params:
        for start in range(0, len(values), _CHUNK):
            clause = SearchClause(param, tuple(values[start : start + _CHUNK]))
            offset = 0
            while True:
                page = repository.search(
                    SearchQuery(rtype, (clause,), count=500, offset=offset, total=False)
                )
                for stored in page.resources:
                    if stored.data is not None and stored.id not in found:
                        found[stored.id] = orjson.loads(stored.data)
                if len(page.resources) < 500:
                    break
                offset += 500
    return found


def resource_shifts(
    repository: Repository,
    model: Model,
    old: Members,
    new: Members,
    *,
    types: Sequence[str] = CLINICAL_TYPES,
    limit: int = 50,
) -> tuple[list[ResourceShift], dict[str, set[str]]]:
    """Per resource type, the resources that newly match / no longer match (see the
    module docstring; types without a change are left out), and the distinct patients
    across types (``newly``, ``noLonger``: ``Patient/id`` sets).

    Args:
        repository: the store (with a search index).
        model: the FHIR model (the coded search parameters per type).
        old: the active expansion.
        new: the proposed expansion.
        types: the resource types to search.
        limit: at most this many patient ids and example resources per list.
    """
    delta = sorted(old ^ new)
    patients: dict[str, set[str]] = {"newly": set(), "noLonger": set()}
    if not delta:
        return [], patients
    indexer = SearchIndexer(model)
    shifts = []
    for rtype in types:
        params = _token_params(model, rtype)
        if not params or not repository.search(SearchQuery(rtype, (), 1, total=False)).resources:
            continue  # one cheap query spares a search per coded parameter of an empty type
        tally = _Tally({}, {}, set(), set(), set())
        for rid, resource in sorted(_candidates(repository, rtype, params, delta).items()):
            _classify(indexer, resource, f"{rtype}/{rid}", set(params), old, new, tally)
        patients["newly"] |= tally.newly_patients
        patients["noLonger"] |= tally.gone_patients
        if tally.newly or tally.gone:
            shifts.append(
                ResourceShift(
                    rtype,
                    len(tally.newly),
                    len(tally.gone),
                    len(tally.newly_patients),
                    len(tally.gone_patients),
                    tuple(sorted(tally.newly_patients)[:limit]),
                    tuple(sorted(tally.gone_patients)[:limit]),
                    tuple(sorted(tally.newly)[:limit]),
                    tuple(sorted(tally.gone)[:limit]),
                    tuple(sorted(tally.elements)),
                )
            )
    return shifts, patients


def _classify(
    indexer: SearchIndexer,
    resource: dict[str, Any],
    reference: str,
    params: set[str],
    old: Members,
    new: Members,
    tally: _Tally,
) -> None:
    by_param: dict[str, set[tuple[str, str]]] = {}
    patients: set[str] = set()
    for param, system, value in indexer.table_rows(resource).get("token_index", []):
        if param == COMPARTMENT_PARAM and system == "Patient":
            patients.add(f"Patient/{value}")
        elif param in params and isinstance(system, str) and isinstance(value, str):
            by_param.setdefault(param, set()).add((system, value))
    newly = gone = False
    for param, tokens in by_param.items():
        before, after = bool(tokens & old), bool(tokens & new)
        if after and not before:
            newly = True
            tally.elements.add(f"{resource['resourceType']}.{param}")
        elif before and not after:
            gone = True
            tally.elements.add(f"{resource['resourceType']}.{param}")
    if newly:
        tally.newly[reference] = reference
        tally.newly_patients |= patients
    if gone:
        tally.gone[reference] = reference
        tally.gone_patients |= patients
