"""CDS Hooks 2.0: discovery, the starter services firing and not firing, prefetch both
ways, feedback and rates, authentication (https://cds-hooks.hl7.org/2.0/)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt

from cmio.cds import feedback_rates, resolve_prefetch, service_as_library, starter_services
from cmio.testing.auth import mint_token
from tests.cds.conftest import RESOURCES, RXNORM, Cds, med
from tests.cds.shapes import (
    SPEC_DISCOVERY,
    SPEC_FEEDBACK,
    SPEC_OVERRIDE,
    SPEC_REQUEST,
    SPEC_RESPONSE,
    check_discovery,
    check_request,
    check_response,
)

BY_ID = {r["id"]: r for r in RESOURCES}


def test_shape_checker_accepts_spec_examples_and_rejects_broken() -> None:
    assert check_discovery(SPEC_DISCOVERY) == []
    assert check_request(SPEC_REQUEST) == []
    assert check_response(SPEC_RESPONSE) == []
    broken = json.loads(json.dumps(SPEC_RESPONSE))
    broken["cards"][0]["indicator"] = "severe"
    broken["cards"][0]["summary"] = "x" * 141
    assert len(check_response(broken)) == 2
    assert check_request({"hook": "patient-view", "hookInstance": "1", "context": {}}) != []


def _request(hook: str, patient: str, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/dr1", "patientId": patient}
    context.update(extra.pop("context", {}))
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **extra}
    assert check_request(body) == []
    return body


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _search(*ids: str) -> dict[str, Any]:
    return _bundle(*(BY_ID[i] for i in ids))


def _call(cds: Cds, service: str, body: dict[str, Any], status: int = 200) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{cds.root}/cds-services/{service}", json=body, headers=cds.headers(), timeout=120
    )
    assert response.status_code == status, response.text
    if status != 200:
        return []
    payload = response.json()
    assert check_response(payload) == []
    cards: list[dict[str, Any]] = payload["cards"]
    return cards


def test_discovery_lists_active_services(cds: Cds) -> None:
    response = httpx.get(f"{cds.root}/cds-services", headers=cds.headers())
    assert response.status_code == 200
    body = response.json()
    assert check_discovery(body) == []
    hooks = {s["id"]: s["hook"] for s in body["services"]}
    assert hooks["diabetes-a1c"] == "patient-view"
    assert hooks["drug-allergy"] == "order-sign"
    assert hooks["duplicate-therapy-select"] == "order-select"


def test_retired_service_neither_listed_nor_fired(cds: Cds) -> None:
    service = next(s for s in starter_services() if s.id == "bp-above-target")
    library = service_as_library(service)
    library.update(id="bp-retired", version="1.1.0", status="retired")
    repository = cds.app.env.repository
    with repository.transaction() as tx:
        tx.create(library, id="bp-retired")
    try:
        listed = httpx.get(f"{cds.root}/cds-services", headers=cds.headers()).json()
        assert "bp-above-target" in {s["id"] for s in listed["services"]}  # 1.0.0 still active
        with repository.transaction() as tx:
            current = tx.read("Library", service_as_library(service)["id"])
            tx.update({**json.loads(current.data or "{}"), "status": "retired"})
        listed = httpx.get(f"{cds.root}/cds-services", headers=cds.headers()).json()
        assert "bp-above-target" not in {s["id"] for s in listed["services"]}
        _call(cds, "bp-above-target", _request("patient-view", "htn-stale"), status=404)
    finally:
        with repository.transaction() as tx:
            current = tx.read("Library", service_as_library(service)["id"])
            tx.update({**json.loads(current.data or "{}"), "status": "active"})


@pytest.mark.parametrize(
    ("patient", "prefetch", "fires"),
    [
        ("dm-overdue", {"conditions": ["c1"], "a1c": ["o1"]}, True),
        ("dm-recent", {"conditions": ["c2"], "a1c": ["o2"]}, False),
        ("healthy", {"conditions": [], "a1c": []}, False),
    ],
)
def test_diabetes_a1c_with_client_prefetch(
    cds: Cds, patient: str, prefetch: dict[str, list[str]], fires: bool
) -> None:
    sent = {key: _search(*ids) for key, ids in prefetch.items()}
    cards = _call(cds, "diabetes-a1c", _request("patient-view", patient, prefetch=sent))
    assert len(cards) == int(fires)
    if fires:
        assert "HbA1c" in cards[0]["summary"] and cards[0]["indicator"] == "warning"
        action = cards[0]["suggestions"][0]["actions"][0]
        assert action["type"] == "create" and action["resource"]["resourceType"] == "ServiceRequest"


@pytest.mark.parametrize(
    ("patient", "fires"), [("htn-stale", True), ("htn-changed", False), ("htn-ok", False)]
)
def test_bp_above_target_fetched_in_process(cds: Cds, patient: str, fires: bool) -> None:
    body = _request(
        "patient-view",
        patient,
        fhirServer=cds.server.base,
        fhirAuthorization={
            "access_token": cds.token(),
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.rs",
            "subject": "cds",
        },
    )
    cards = _call(cds, "bp-above-target", body)
    assert len(cards) == int(fires)
    if fires:
        assert "152/94" in cards[0]["summary"]
        assert cards[0]["overrideReasons"]


def test_prefetch_over_http_with_the_bearer_token(cds: Cds) -> None:
    remote = cds.server.base.replace("127.0.0.1", "localhost")  # not "this server": over HTTP
    auth = {"token_type": "Bearer", "expires_in": 300, "scope": "user/*.rs", "subject": "cds"}
    body = _request(
        "patient-view",
        "dm-overdue",
        fhirServer=remote,
        fhirAuthorization={**auth, "access_token": cds.token(remote)},
    )
    cards = _call(cds, "diabetes-a1c", body)
    assert len(cards) == 1
    body["fhirAuthorization"]["access_token"] = "not-a-token"
    _call(cds, "diabetes-a1c", body, status=412)  # the FHIR server refused: no data


def test_prefetch_templates_render() -> None:
    request = {"context": {"patientId": "p1", "userId": "Practitioner/u9"}}
    templates = {"a": "Observation?patient={{context.patientId}}", "b": "Practitioner/{{userPractitionerId}}", "c": "Patient/{{userPatientId}}"}  # fmt: skip

    class Echo:
        def get(self, url: str) -> dict[str, Any]:
            return {"resourceType": "Basic", "id": url}

    got = resolve_prefetch(templates, request, Echo())
    assert got["a"]["id"] == "Observation?patient=p1"
    assert got["b"]["id"] == "Practitioner/u9"
    assert got["c"] is None  # the user is not a Patient: the token has no value


def test_cancer_screening_from_care_gaps(cds: Cds) -> None:
    cards = _call(cds, "cancer-screening", _request("patient-view", "screen"))
    assert {c["summary"].split()[1] for c in cards} >= {"CMS125"}
    assert _call(cds, "cancer-screening", _request("patient-view", "healthy")) == []


def test_duplicate_therapy_select_and_sign(cds: Cds) -> None:
    draft = med("draft-1", "htn-stale", "29046", "lisinopril 10 MG", 0, status="draft")
    other = med("draft-2", "htn-stale", "17767", "amlodipine 5 MG", 0, status="draft")
    prefetch = {"medications": _search("m1")}
    sign = _request("order-sign", "htn-stale", context={"draftOrders": _bundle(draft, other)}, prefetch=prefetch)  # fmt: skip
    cards = _call(cds, "duplicate-therapy-sign", sign)
    assert len(cards) == 1 and "lisinopril" in cards[0]["summary"]
    assert cards[0]["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "description": "Remove lisinopril 10 MG",
        "resourceId": ["MedicationRequest/draft-1"],
    }
    select = _request(
        "order-select",
        "htn-stale",
        context={"draftOrders": _bundle(draft, other), "selections": ["MedicationRequest/draft-2"]},
        prefetch=prefetch,
    )
    assert _call(cds, "duplicate-therapy-select", select) == []  # amlodipine: no duplicate
    select["context"]["selections"] = ["MedicationRequest/draft-1"]
    assert len(_call(cds, "duplicate-therapy-select", select)) == 1


def test_drug_allergy(cds: Cds) -> None:
    penicillin = med("draft-3", "healthy", "7980", "penicillin G", 0, status="draft")
    allergies = {"allergies": _bundle(BY_ID["al1"])}
    body = _request("order-sign", "healthy", context={"draftOrders": _bundle(penicillin)}, prefetch=allergies)  # fmt: skip
    cards = _call(cds, "drug-allergy", body)
    assert len(cards) == 1 and cards[0]["indicator"] == "critical"
    safe = med("draft-4", "healthy", "29046", "lisinopril", 0, status="draft")
    body["context"]["draftOrders"] = _bundle(safe)
    assert _call(cds, "drug-allergy", body) == []
    assert penicillin["medicationCodeableConcept"]["coding"][0]["system"] == RXNORM


def test_feedback_stored_and_rates(cds: Cds) -> None:
    url = f"{cds.root}/cds-services/drug-allergy/feedback"
    for body in (SPEC_FEEDBACK, SPEC_OVERRIDE, SPEC_OVERRIDE):
        assert httpx.post(url, json=body, headers=cds.headers()).status_code == 200
    bad = {"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2020"}]}
    response = httpx.post(url, json=bad, headers=cds.headers())
    assert response.status_code == 400 and "outcome" in response.json()["error"]
    rates = {r["service"]: r for r in feedback_rates(cds.app.env.repository).to_pylist()}
    row = rates["drug-allergy"]
    assert (row["feedback"], row["accepted"], row["overridden"]) == (3, 1, 2)
    assert row["override_rate"] == pytest.approx(2 / 3)
    assert row["top_override_reason"] == "reason-code-provided-by-service"


def test_authentication_required(cds: Cds) -> None:
    url = f"{cds.root}/cds-services/diabetes-a1c"
    body = _request("patient-view", "healthy", prefetch={"conditions": None, "a1c": None})
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.get(f"{cds.root}/cds-services").status_code == 401
    bad = {"authorization": "Bearer " + cds.token()[:-4] + "AAAA"}
    assert httpx.post(url, json=body, headers=bad).status_code == 401

    def client_jwt(audience: str, expires: int = 300) -> str:
        now = int(time.time())
        claims = {"iss": cds.client_issuer, "sub": "ehr-client", "aud": audience,
                  "iat": now, "exp": now + expires, "jti": uuid.uuid4().hex}  # fmt: skip
        header = {"alg": "RS384", "typ": "JWT", "kid": "client-1"}
        return jwt.encode(header, claims, cds.client_key, algorithms=["RS384"])

    ok = {"authorization": f"Bearer {client_jwt(url)}"}
    assert httpx.post(url, json=body, headers=ok).status_code == 200
    wrong_aud = {"authorization": f"Bearer {client_jwt(url + '-other')}"}
    assert httpx.post(url, json=body, headers=wrong_aud).status_code == 401
    expired = {"authorization": f"Bearer {client_jwt(url, -10)}"}
    assert httpx.post(url, json=body, headers=expired).status_code == 401
    # a CDS client without fhirAuthorization cannot make the service read the store
    fetch = _request("patient-view", "dm-overdue")
    assert httpx.post(url, json=fetch, headers=ok).status_code == 412


def test_malformed_requests(cds: Cds) -> None:
    url = f"{cds.root}/cds-services/diabetes-a1c"
    for body in ({"hook": "patient-view"}, _request("order-sign", "x", context={"draftOrders": {}})):  # fmt: skip
        response = httpx.post(url, json=body, headers=cds.headers())
        assert response.status_code == 400
    assert httpx.post(f"{cds.root}/cds-services/nope", json=_request("patient-view", "x"),
                      headers=cds.headers()).status_code == 404  # fmt: skip


def test_trusted_client_jwks_by_url(cds: Cds) -> None:
    url = f"{cds.root}/cds-services/diabetes-a1c"
    issuer = "https://ehr2.example.org"
    cds.app.cds.clients[issuer] = f"{cds.root}/auth/jwks"  # this server's JWKS, fetched once
    token = mint_token(cds.app, cds.server.base, issuer=issuer, audience=url, typ="JWT")
    body = _request("patient-view", "healthy", prefetch={"conditions": None, "a1c": None})
    response = httpx.post(url, json=body, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    other = mint_token(cds.app, cds.server.base, issuer="https://unknown.example", audience=url)
    response = httpx.post(url, json=body, headers={"authorization": f"Bearer {other}"})
    assert response.status_code == 401
