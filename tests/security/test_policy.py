"""Authorization decisions of :class:`cmio.security.policy.Policy` over a small store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing.extract import SearchIndexer
from cmio.model import Model, load_model
from cmio.security.grant import AccessGrant
from cmio.security.policy import Policy
from cmio.security.roles import RoleTable
from cmio.store import open_repository
from cmio.store.base import Repository

LAB = "http://terminology.hl7.org/CodeSystem/observation-category"


def _obs(rid: str, patient: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": LAB, "code": category}]}],
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient}"},
    }


FIXTURE: list[dict[str, Any]] = [
    {"resourceType": "Practitioner", "id": "doc"},
    {"resourceType": "Practitioner", "id": "other-doc"},
    {"resourceType": "Organization", "id": "org"},
    {
        "resourceType": "Patient",
        "id": "p1",
        "generalPractitioner": [{"reference": "Practitioner/doc"}],
    },
    {"resourceType": "Patient", "id": "p2"},
    {"resourceType": "Patient", "id": "p3"},
    {"resourceType": "Patient", "id": "p4"},
    {
        "resourceType": "CareTeam",
        "id": "ct",
        "subject": {"reference": "Patient/p3"},
        "participant": [{"member": {"reference": "Practitioner/doc"}}],
    },
    {
        "resourceType": "Encounter",
        "id": "e4",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p4"},
        "participant": [{"individual": {"reference": "Practitioner/doc"}}],
    },
    {
        "resourceType": "Encounter",
        "id": "e2",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p2"},
        "participant": [{"individual": {"reference": "Practitioner/other-doc"}}],
    },
    _obs("o1", "p1", "laboratory"),
    _obs("o2", "p1", "vital-signs"),
    _obs("o3", "p2", "laboratory"),
    {
        "resourceType": "MeasureReport",
        "id": "summary",
        "status": "complete",
        "type": "summary",
        "measure": "http://example.org/Measure/m",
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
    },
    {
        "resourceType": "MeasureReport",
        "id": "individual",
        "status": "complete",
        "type": "individual",
        "measure": "http://example.org/Measure/m",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
    },
]
BY_ID = {r["id"]: r for r in FIXTURE}


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[Repository]:
    path: Path = tmp_path_factory.mktemp("policy") / "cmio.db"
    repo = open_repository(f"sqlite:///{path}", indexer=SearchIndexer(model, full_text=False))
    with repo.transaction() as tx:
        for resource in FIXTURE:
            tx.create(dict(resource), id=resource["id"])
    yield repo
    repo.close()


def _policy(repository: Repository, model: Model, scopes: set[str], **fields: Any) -> Policy:
    fields.setdefault("kind", "user")
    grant = AccessGrant(subject="someone", scopes=frozenset(scopes), **fields)
    return Policy(grant, repository, model)


def test_patient_context_confined_to_compartment(repository: Repository, model: Model) -> None:
    policy = _policy(
        repository, model, {"patient/Observation.rs", "patient/Patient.r"}, patient="p1"
    )
    access = policy.access("s", "Observation")
    assert access is not None and access.patients == frozenset({"p1"})
    assert policy.check("read", BY_ID["o1"]).allowed
    assert policy.check("read", BY_ID["o3"]).effect == "hide"
    assert policy.check("read", BY_ID["p1"]).allowed
    assert policy.check("read", BY_ID["p2"]).effect == "hide"
    assert policy.check("create", BY_ID["o1"], exists=False).effect == "deny"  # no c
    assert policy.check("read", BY_ID["doc"]).effect == "deny"  # no Practitioner scope
    assert policy.access("s", "Patient") is None  # Patient.r only


def test_patient_scope_without_launch_patient_is_denied(
    repository: Repository, model: Model
) -> None:
    policy = _policy(repository, model, {"patient/*.cruds"})
    assert policy.access("r", "Observation") is None
    assert policy.check("read", BY_ID["o1"]).effect == "deny"


def test_patient_writes_stay_in_the_compartment(repository: Repository, model: Model) -> None:
    policy = _policy(repository, model, {"patient/*.cruds"}, patient="p1")
    assert policy.check("create", _obs("new", "p1", "laboratory"), exists=False).allowed
    assert policy.check("create", _obs("new", "p2", "laboratory"), exists=False).effect == "deny"
    assert policy.check("read", BY_ID["org"]).allowed  # outside the compartment: not patient data
    assert policy.check("delete", BY_ID["o3"]).effect == "hide"


def test_query_narrowed_scope(repository: Repository, model: Model) -> None:
    scope = f"patient/Observation.rs?category={LAB}|laboratory"
    policy = _policy(repository, model, {scope}, patient="p1")
    access = policy.access("s", "Observation")
    assert access is not None
    assert access.narrowing == (((("category", f"{LAB}|laboratory"),),),)
    assert policy.check("read", BY_ID["o1"]).allowed
    assert policy.check("read", BY_ID["o2"]).effect == "hide"  # vital signs
    assert policy.check("read", BY_ID["o3"]).effect == "hide"  # other patient


def test_clinician_sees_the_patients_they_treat(repository: Repository, model: Model) -> None:
    policy = _policy(
        repository,
        model,
        {"user/*.cruds", "openid"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    )
    assert policy.related_patients() == {"p1", "p3", "p4"}
    assert policy.check("read", BY_ID["o1"]).allowed
    assert policy.check("read", BY_ID["o3"]).effect == "hide"
    assert policy.check("read", BY_ID["e2"]).effect == "hide"
    assert policy.check("update", BY_ID["p4"]).allowed
    assert policy.check("read", BY_ID["other-doc"]).allowed  # not patient data
    assert policy.check("create", _obs("n", "p2", "laboratory"), exists=False).effect == "deny"
    assert policy.can_break_glass()


def test_break_the_glass_opens_other_patients(repository: Repository, model: Model) -> None:
    policy = _policy(
        repository,
        model,
        {"user/*.cruds"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
        break_glass="unconscious patient in the ED",
    )
    assert policy.check("read", BY_ID["o3"]).allowed
    access = policy.access("s", "Observation")
    assert access is not None and access.unrestricted


def test_clinician_without_fhir_user_sees_no_patient(repository: Repository, model: Model) -> None:
    policy = _policy(repository, model, {"user/*.cruds"}, roles=frozenset({"clinician"}))
    assert policy.related_patients() == frozenset()
    assert policy.check("read", BY_ID["p1"]).effect == "hide"


def test_executive_sees_aggregates_only(repository: Repository, model: Model) -> None:
    roles = RoleTable()
    executive = roles.scopes_for(["executive"])
    policy = _policy(repository, model, set(executive), roles=frozenset({"executive"}))
    assert policy.check("read", BY_ID["summary"]).allowed
    assert policy.check("read", BY_ID["individual"]).effect == "hide"
    assert policy.check("read", BY_ID["o1"]).effect == "deny"
    assert policy.check("read", BY_ID["p1"]).effect == "deny"
    assert not policy.can_break_glass()
    # roles cap the token: a wider token scope does not widen an executive
    wide = _policy(repository, model, {"user/*.cruds"}, roles=frozenset({"executive"}))
    assert wide.check("read", BY_ID["o1"]).effect == "deny"
    assert wide.check("read", BY_ID["individual"]).effect == "hide"


def test_other_roles(repository: Repository, model: Model) -> None:
    roles = RoleTable()

    def as_role(role: str) -> Policy:
        return _policy(repository, model, set(roles.scopes_for([role])), roles=frozenset({role}))

    analyst = as_role("analyst")
    assert analyst.check("read", BY_ID["o3"]).allowed
    assert analyst.check("create", BY_ID["o3"], exists=False).effect == "deny"
    officer = as_role("privacy-officer")
    assert officer.check("read", BY_ID["p2"]).allowed
    assert officer.check("read", BY_ID["o1"]).effect == "deny"
    assert officer.access("s", "AuditEvent") is not None
    admin = as_role("administrator")
    assert admin.check("delete", BY_ID["o3"]).allowed
    assert admin.operation("reindex", None).allowed
    assert admin.can_break_glass()
    assert as_role("informaticist").check("update", BY_ID["o1"]).effect == "deny"
    assert (
        as_role("informaticist")
        .check("create", {"resourceType": "ValueSet", "status": "draft"}, exists=False)
        .allowed
    )
    assert as_role("integration-engineer").check("create", BY_ID["o1"], exists=False).allowed


def test_operations(repository: Repository, model: Model) -> None:
    clinician = _policy(
        repository,
        model,
        {"user/*.cruds"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    )
    analyst = _policy(repository, model, {"user/*.rs"}, roles=frozenset({"analyst"}))
    patient = _policy(repository, model, {"patient/*.rs"}, patient="p1")
    assert clinician.operation("expand", "ValueSet").allowed
    assert patient.operation("lookup", "CodeSystem").allowed
    assert clinician.operation("reindex", None).effect == "deny"
    assert analyst.operation("viewdefinition-run", "Basic").allowed
    assert clinician.operation("viewdefinition-run", "Basic").effect == "deny"
    assert patient.operation("viewdefinition-run", None).effect == "deny"
    assert patient.operation("validate", "Observation").allowed
    assert patient.operation("validate", "Practitioner").allowed
    assert (
        _policy(repository, model, {"patient/Patient.r"}, patient="p1")
        .operation("validate", "Observation")
        .effect
        == "deny"
    )
    assert AccessGrant.unrestricted().kind == "local"
    local = Policy(AccessGrant.unrestricted(), repository, model)
    assert local.operation("reindex", None).allowed


def test_export(repository: Repository, model: Model) -> None:
    analyst = _policy(repository, model, {"user/*.rs"}, roles=frozenset({"analyst"}))
    assert analyst.export(None).allowed
    backend = _policy(
        repository, model, {"system/Observation.rs", "system/Patient.rs"}, kind="client"
    )
    assert backend.export(["Observation", "Patient"]).allowed
    assert backend.export(["Observation", "Encounter"]).effect == "deny"
    assert backend.export(None).effect == "deny"
    patient = _policy(repository, model, {"patient/*.rs"}, patient="p1")
    assert patient.export(["Observation"]).effect == "deny"
    clinician = _policy(
        repository,
        model,
        {"user/*.cruds"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    )
    assert clinician.export(["Observation"]).effect == "deny"


def test_unrestricted_grant(repository: Repository, model: Model) -> None:
    policy = Policy(AccessGrant.unrestricted(), repository, model)
    for resource in FIXTURE:
        for interaction in ("read", "update", "delete", "history-instance"):
            assert policy.check(interaction, resource).allowed
    access = policy.access("s", "*")
    assert access is not None and access.unrestricted


def test_audit_trail_needs_a_scope_naming_it(repository: Repository, model: Model) -> None:
    event = {"resourceType": "AuditEvent", "id": "a1"}
    clinician = _policy(
        repository,
        model,
        {"user/*.cruds"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    )
    assert clinician.check("read", event).effect == "deny"
    assert (
        _policy(repository, model, {"system/*.rs"}, kind="client").access("s", "AuditEvent") is None
    )
    officer = _policy(
        repository,
        model,
        set(RoleTable().scopes_for(["privacy-officer"])),
        roles=frozenset({"privacy-officer"}),
    )
    assert officer.check("read", event).allowed
    local = Policy(AccessGrant.unrestricted(), repository, model)
    assert local.check("read", event).allowed


def test_break_the_glass_does_not_reach_bulk_data(repository: Repository, model: Model) -> None:
    admin = _policy(
        repository, model, {"user/*.cruds"}, roles=frozenset({"administrator"}), break_glass="drill"
    )
    assert admin.export(["Observation"]).allowed
    clinician = _policy(
        repository,
        model,
        {"user/*.cruds"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
        break_glass="ED",
    )
    assert clinician.check("read", BY_ID["o3"]).allowed
    assert clinician.export(["Observation"]).effect == "deny"
    assert clinician.operation("viewdefinition-run", None).effect == "deny"


def test_relationship_checked_per_patient(repository: Repository, model: Model) -> None:
    policy = _policy(
        repository,
        model,
        {"user/*.rs"},
        roles=frozenset({"clinician"}),
        fhir_user="Practitioner/doc",
    )
    assert policy.is_related(["p4"])  # an Encounter participant
    assert not policy.is_related(["p2"])
    assert policy.is_related(["p2", "p3"])  # a CareTeam member of p3
    assert policy._related is None  # answered without the whole panel
    assert policy.related_patients() == {"p1", "p3", "p4"}
    assert not policy.is_related(["p2"])


def test_measure_operations(repository: Repository, model: Model) -> None:
    roles = RoleTable()
    executive = _policy(
        repository, model, set(roles.scopes_for(["executive"])), roles=frozenset({"executive"})
    )
    assert executive.operation("evaluate-measure", "Measure").allowed
    assert executive.operation("evaluate-measure", "Measure", subject_level=True).effect == "deny"
    assert executive.operation("care-gaps", "Measure").effect == "deny"
    patient = _policy(repository, model, {"patient/*.rs"}, patient="p1")
    assert patient.operation("evaluate-measure", "Measure").effect == "deny"
    analyst = _policy(repository, model, {"user/*.rs"}, roles=frozenset({"analyst"}))
    assert analyst.operation("evaluate-measure", "Measure", subject_level=True).allowed
    assert analyst.operation("care-gaps", "Measure").allowed
    assert analyst.operation("viewdefinition-export", "Basic").allowed
    narrow = _policy(repository, model, {"user/Basic.rs"}, roles=frozenset({"analyst"}))
    assert narrow.operation("viewdefinition-export", "Basic").effect == "deny"
