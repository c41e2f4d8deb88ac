"""Batch and transaction Bundles: atomicity, reference rewriting, conditional references."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_crud import JSON, create, patient


def post_bundle(
    client: httpx.Client, kind: str, entries: list[dict[str, Any]], **headers: str
) -> httpx.Response:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return client.post("", json=bundle, headers={**JSON, **headers})


def count_by_identifier(client: httpx.Client, rtype: str, system: str, value: str) -> int:
    bundle = client.get(f"/{rtype}", params={"identifier": f"{system}|{value}"}).json()
    return int(bundle["total"])


def test_transaction_rewrites_urn_references(client: httpx.Client) -> None:
    p_urn, e_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": e_urn,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": p_urn},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
        {"fullUrl": p_urn, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": p_urn},
                "encounter": {"reference": e_urn},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    ]
    response = post_bundle(client, "transaction", entries)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 3
    patient_id = body["entry"][1]["resource"]["id"]
    encounter_id = body["entry"][0]["resource"]["id"]
    observation = body["entry"][2]["resource"]
    assert observation["subject"]["reference"] == f"Patient/{patient_id}"
    assert observation["encounter"]["reference"] == f"Encounter/{encounter_id}"
    stored = client.get(f"/Observation/{observation['id']}").json()
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"


def test_transaction_is_all_or_nothing(client: httpx.Client) -> None:
    good = patient()
    ident = good["identifier"][0]
    bad = patient(birthDate="nonsense")
    response = post_bundle(
        client,
        "transaction",
        [
            {"resource": good, "request": {"method": "POST", "url": "Patient"}},
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
        ],
    )
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.Patient.birthDate"]
    assert count_by_identifier(client, "Patient", ident["system"], ident["value"]) == 0


def test_transaction_rolls_back_on_late_conflict(client: httpx.Client) -> None:
    existing = create(client, patient()).json()
    fresh = patient()
    ident = fresh["identifier"][0]
    response = post_bundle(
        client,
        "transaction",
        [
            {"resource": fresh, "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": existing,
                "request": {
                    "method": "PUT",
                    "url": f"Patient/{existing['id']}",
                    "ifMatch": 'W/"7"',
                },
            },
        ],
    )
    assert response.status_code == 412
    assert count_by_identifier(client, "Patient", ident["system"], ident["value"]) == 0


def test_transaction_conditional_reference_and_if_none_exist(client: httpx.Client) -> None:
    target = create(client, patient()).json()
    ident = target["identifier"][0]
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "y"},
                "subject": {"reference": f"Patient?identifier={ident['system']}|{ident['value']}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
        {
            "resource": patient(identifier=[ident]),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
            },
        },
    ]
    body = post_bundle(client, "transaction", entries).json()
    assert body["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{target['id']}"
    assert body["entry"][1]["response"]["status"] == "200 OK"
    missing = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "z"},
                "subject": {"reference": "Patient?identifier=urn:none|none"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
    ]
    assert post_bundle(client, "transaction", missing).status_code == 412


def test_transaction_unresolved_urn_is_rejected(client: httpx.Client) -> None:
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "q"},
                "subject": {"reference": f"urn:uuid:{uuid.uuid4()}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
    ]
    assert post_bundle(client, "transaction", entries).status_code == 400


def test_batch_entries_are_independent(client: httpx.Client) -> None:
    existing = create(client, patient()).json()
    response = post_bundle(
        client,
        "batch",
        [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient(birthDate="bad"), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
            {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
        ],
    )
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201", "400", "200", "200"]
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["resource"]["id"] == existing["id"]


def test_bundle_limits_and_shape(client: httpx.Client) -> None:
    too_many = [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}] * 501
    assert post_bundle(client, "transaction", too_many).status_code == 413
    assert post_bundle(client, "collection", []).status_code == 400
    assert client.post("", json={"resourceType": "Patient"}, headers=JSON).status_code == 400
