"""Hostile and malformed input: always a 4xx OperationOutcome, and the server stays healthy."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_crud import JSON, patient


def assert_outcome(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_malformed_json(client: httpx.Client) -> None:
    assert_outcome(
        client.post("/Patient", content=b'{"resourceType": "Patient",', headers=JSON), 400
    )
    assert_outcome(client.post("/Patient", content=b"", headers=JSON), 400)
    assert_outcome(client.post("/Patient", content=b"[1,2]", headers=JSON), 400)


def test_wrong_content_type(client: httpx.Client) -> None:
    assert_outcome(
        client.post(
            "/Patient", content=b"<Patient/>", headers={"content-type": "application/fhir+xml"}
        ),
        415,
    )
    assert_outcome(
        client.post("/Patient", content=b"x", headers={"content-type": "text/plain"}), 415
    )


def test_oversized_body(client: httpx.Client) -> None:
    big = patient(name=[{"family": "x" * (3 * 1024 * 1024)}])
    assert_outcome(client.post("/Patient", json=big, headers=JSON), 413)


@pytest.mark.parametrize(
    "rid",
    ["..%2F..%2Fetc%2Fpasswd", "1'%20OR%20'1'='1", "a" * 65, "x;DROP TABLE resource", "%00"],
)
def test_hostile_ids(client: httpx.Client, rid: str) -> None:
    response = client.get(f"/Patient/{rid}")
    assert response.status_code in (400, 404)
    assert response.json()["resourceType"] == "OperationOutcome"
    put = client.put(f"/Patient/{rid}", json=patient(id=rid), headers=JSON)
    assert put.status_code in (400, 404)


def test_deeply_nested_json(client: httpx.Client) -> None:
    deep = (
        '{"resourceType":"Patient","extension":'
        + '[{"url":"http://x","extension":' * 200
        + "[]"
        + "}]" * 200
        + "}"
    )
    response = client.post("/Patient", content=deep.encode(), headers=JSON)
    assert response.status_code == 400
    very_deep = "[" * 100_000 + "]" * 100_000
    assert_outcome(client.post("/Patient", content=very_deep.encode(), headers=JSON), 400)


def test_type_mismatch_and_unknown_routes(client: httpx.Client) -> None:
    assert_outcome(client.post("/Observation", json=patient(), headers=JSON), 400)
    assert_outcome(client.post("/NotAType", json={"resourceType": "NotAType"}, headers=JSON), 404)
    assert_outcome(client.get("/Patient/1/2/3/4/5"), 404)
    assert_outcome(client.get(""), 400)


def test_server_still_healthy(client: httpx.Client) -> None:
    response = client.post("/Patient", json=patient(), headers=JSON)
    assert response.status_code == 201
    assert client.get("/metadata").status_code == 200
