"""Authorization at router level (``RequestContext(grant=...)``) on SQLite and PostgreSQL:
relationship searches, compartment and narrowing clauses, system search, break-the-glass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.authorize import policy_for, restrict_search
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.security.grant import AccessGrant
from cmio.store.base import SearchClause, SearchQuery

CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def _obs(rid: str, patient: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": CAT, "code": category}]}],
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient}"},
    }


FIXTURE: list[dict[str, Any]] = [
    {"resourceType": "Practitioner", "id": "doc"},
    {"resourceType": "Patient", "id": "gp"},  # general practitioner: doc
    {"resourceType": "Patient", "id": "seen"},  # an Encounter with doc
    {"resourceType": "Patient", "id": "team"},  # doc is in the CareTeam
    {"resourceType": "Patient", "id": "stranger"},
    {
        "resourceType": "Encounter",
        "id": "enc",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/seen"},
        "participant": [{"individual": {"reference": "Practitioner/doc"}}],
    },
    {
        "resourceType": "CareTeam",
        "id": "ct",
        "subject": {"reference": "Patient/team"},
        "participant": [{"member": {"reference": "Practitioner/doc"}}],
    },
    _obs("lab-gp", "gp", "laboratory"),
    _obs("vital-gp", "gp", "vital-signs"),
    _obs("survey-gp", "gp", "survey"),
    _obs("lab-stranger", "stranger", "laboratory"),
]
FIXTURE[1]["generalPractitioner"] = [{"reference": "Practitioner/doc"}]


@pytest.fixture(scope="module")
def router(database_url: str, model: Model) -> Iterator[FhirRouter]:
    env = build_env(database_url, Settings(validation="off", terminology_db=None), model)
    with env.repository.transaction() as tx:
        for resource in FIXTURE:
            tx.create(dict(resource), id=resource["id"])
    yield FhirRouter(env)
    env.repository.close()


def _grant(scopes: set[str], **fields: Any) -> AccessGrant:
    fields.setdefault("kind", "user")
    return AccessGrant(subject="t", scopes=frozenset(scopes), **fields)


CLINICIAN = _grant({"user/*.cruds"}, roles=frozenset({"clinician"}), fhir_user="Practitioner/doc")


def _get(
    router: FhirRouter, path: str, grant: AccessGrant | None, headers: dict[str, str] | None = None
) -> FhirResponse:
    path, _, query = path.partition("?")
    params = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    request = FhirRequest(
        "GET", path, [(k, v) for k, v in params], headers or {}, context=RequestContext(grant=grant)
    )
    return router.handle(request)


def _ids(response: FhirResponse) -> list[str]:
    assert response.status == 200, response.body
    body = orjson.loads(response.body)
    return sorted(e["resource"]["id"] for e in body.get("entry", []))


def test_clinician_reaches_the_patients_they_treat(router: FhirRouter) -> None:
    assert _ids(_get(router, "Patient", CLINICIAN)) == ["gp", "seen", "team"]
    assert _ids(_get(router, "Observation", CLINICIAN)) == ["lab-gp", "survey-gp", "vital-gp"]
    assert _get(router, "Patient/stranger", CLINICIAN).status == 404
    assert _get(router, "Observation/lab-stranger", CLINICIAN).status == 404
    assert _ids(_get(router, "Patient/stranger/Observation", CLINICIAN)) == []


def test_no_grant_is_unrestricted(router: FhirRouter) -> None:
    assert len(_ids(_get(router, "Patient", None))) == 4
    assert _get(router, "Observation/lab-stranger", None).status == 200


def test_break_the_glass_is_recorded_on_the_grant(router: FhirRouter) -> None:
    request = FhirRequest(
        "GET",
        "Observation/lab-stranger",
        headers={"x-break-glass": "ED: unconscious"},
        context=RequestContext(grant=CLINICIAN),
    )
    assert router.handle(request).status == 200
    assert request.context.grant is not None
    assert request.context.grant.break_glass == "ED: unconscious"
    assert CLINICIAN.break_glass is None


def test_narrowing_alternatives_of_one_parameter_are_ored(router: FhirRouter) -> None:
    grant = _grant(
        {
            f"patient/Observation.rs?category={CAT}|laboratory",
            f"patient/Observation.rs?category={CAT}|vital-signs",
        },
        patient="gp",
    )
    assert _ids(_get(router, "Observation", grant)) == ["lab-gp", "vital-gp"]
    assert _get(router, "Observation/survey-gp", grant).status == 404
    assert _get(router, "Observation/vital-gp", grant).status == 200


def test_narrowing_of_different_shapes_cannot_be_one_search(router: FhirRouter) -> None:
    grant = _grant(
        {
            f"patient/Observation.rs?category={CAT}|laboratory",
            "patient/Observation.rs?status=final",
        },
        patient="gp",
    )
    denied = _get(router, "Observation", grant)
    assert denied.status == 403
    assert b"forbidden" in denied.body
    assert _get(router, "Observation/survey-gp", grant).status == 200  # status=final matches


def test_system_search(router: FhirRouter) -> None:
    patient = _grant({"patient/*.rs"}, patient="gp")
    found = _ids(_get(router, "?_type=Observation,Patient", patient))
    assert found == ["gp", "lab-gp", "survey-gp", "vital-gp"]
    mixed = _grant({"patient/Observation.rs", "user/Patient.rs"}, patient="gp")
    assert _get(router, "?_type=Observation,Patient", mixed).status == 403
    assert (
        _get(router, "?_type=Observation", _grant({"patient/Patient.rs"}, patient="gp")).status
        == 403
    )


def test_restrict_search_clauses(router: FhirRouter) -> None:
    env: Env = router.env
    request = FhirRequest("GET", "Observation", context=RequestContext(grant=CLINICIAN))
    policy = policy_for(env, request)
    query = restrict_search(policy, SearchQuery("Observation"))
    assert query.clauses == (
        SearchClause("_compartment", ("Patient|gp", "Patient|seen", "Patient|team")),
    )
    nobody = _grant({"user/*.rs"}, roles=frozenset({"clinician"}))
    request = FhirRequest("GET", "Observation", context=RequestContext(grant=nobody))
    empty = restrict_search(policy_for(env, request), SearchQuery("Observation"))
    assert env.repository.search(empty).resources == []
    with pytest.raises(FhirError) as denied:
        restrict_search(policy_for(env, request), SearchQuery("AuditEvent"))
    assert denied.value.status == 403  # wildcards do not reach the audit trail


def test_history_is_filtered_without_a_total(router: FhirRouter) -> None:
    patient = _grant({"patient/*.rs"}, patient="gp")
    response = _get(router, "Observation/_history", patient)
    assert response.status == 200
    body = orjson.loads(response.body)
    assert "total" not in body  # versions were left out: no count that would reveal them
    assert sorted(e["resource"]["id"] for e in body["entry"]) == [
        "lab-gp",
        "survey-gp",
        "vital-gp",
    ]
    full = orjson.loads(_get(router, "Observation/_history", None).body)
    assert full["total"] == 4
    system = orjson.loads(_get(router, "_history", patient).body)
    ids = {e["resource"]["id"] for e in system["entry"]}
    assert ids == {"doc", "gp", "lab-gp", "survey-gp", "vital-gp"}  # doc: not patient data


def test_unknown_roles_grant_nothing_more(router: FhirRouter) -> None:
    grant = _grant(
        {"user/*.rs"}, roles=frozenset({"clinician", "astronaut"}), fhir_user="Practitioner/doc"
    )
    assert _ids(_get(router, "Patient", grant)) == ["gp", "seen", "team"]
    nobody = _grant({"user/*.rs"}, roles=frozenset({"astronaut"}))
    assert len(_ids(_get(router, "Patient", nobody))) == 4  # no known role: the token decides


def test_denial_names_the_missing_permission(router: FhirRouter) -> None:
    grant = _grant({"patient/Observation.rs"}, patient="gp")
    denied = _get(router, "Condition", grant)
    assert denied.status == 403
    outcome = orjson.loads(denied.body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "search on Condition" in outcome["issue"][0]["diagnostics"]


def test_deleted_resources_answer_410_only_within_reach(router: FhirRouter) -> None:
    repository = router.env.repository
    with repository.transaction() as tx:
        tx.create(_obs("gone-gp", "gp", "laboratory"), id="gone-gp")
        tx.create(_obs("gone-stranger", "stranger", "laboratory"), id="gone-stranger")
    with repository.transaction() as tx:
        tx.delete("Observation", "gone-gp")
        tx.delete("Observation", "gone-stranger")
    patient = _grant({"patient/*.rs"}, patient="gp")
    assert _get(router, "Observation/gone-gp", patient).status == 410
    hidden = _get(router, "Observation/gone-stranger", patient)
    absent = _get(router, "Observation/gone-nobody", patient)
    assert hidden.status == absent.status == 404
    assert hidden.body == absent.body.replace(b"gone-nobody", b"gone-stranger")
    assert _get(router, "Observation/gone-stranger", None).status == 410


def test_checked_writes_are_pinned_to_the_checked_version(router: FhirRouter) -> None:
    from cmio.api.authorize import check_patch, check_update

    body = orjson.dumps(_obs("lab-gp", "gp", "laboratory"))
    request = FhirRequest(
        "PUT", "Observation/lab-gp", body=body, context=RequestContext(grant=CLINICIAN)
    )
    policy = policy_for(router.env, request)
    check_update(router.env, policy, request, "Observation", "lab-gp")
    assert request.headers["if-match"] == 'W/"1"'  # a change in between is a 412
    patch = FhirRequest(
        "PATCH",
        "Observation/lab-gp",
        headers={"if-match": 'W/"7"'},
        body=b'[{"op": "replace", "path": "/status", "value": "amended"}]',
        context=RequestContext(grant=CLINICIAN),
    )
    check_patch(router.env, policy_for(router.env, patch), patch, "Observation", "lab-gp")
    assert patch.headers["if-match"] == 'W/"7"'  # the client's own precondition stays
    unrestricted = FhirRequest("PUT", "Observation/lab-gp", body=body)
    check_update(
        router.env, policy_for(router.env, unrestricted), unrestricted, "Observation", "lab-gp"
    )
    assert "if-match" not in unrestricted.headers
