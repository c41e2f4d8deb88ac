"""Create, read, vread, update, delete, patch and conditional interactions over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

JSON = {"content-type": "application/fhir+json"}


def patient(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": uuid.uuid4().hex}],
        "name": [{"family": "Smith", "given": ["Ann"]}],
        "birthDate": "1970-05-06",
    }
    body.update(extra)
    return body


def create(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = client.post(f"/{body['resourceType']}", json=body, headers=JSON)
    assert response.status_code == 201, response.text
    return response


def test_create_sets_id_meta_and_headers(client: httpx.Client) -> None:
    response = create(client, patient(id="client-id-ignored"))
    body = response.json()
    assert body["id"] != "client-id-ignored"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_read_and_vread(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    read = client.get(f"/Patient/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created
    assert read.headers["etag"] == 'W/"1"'
    vread = client.get(f"/Patient/{created['id']}/_history/1")
    assert vread.json() == created
    assert client.get(f"/Patient/{created['id']}/_history/9").status_code == 404


def test_read_unknown_is_404_with_outcome(client: httpx.Client) -> None:
    response = client.get("/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    unknown_type = client.get("/Fish/1")
    assert unknown_type.status_code == 404
    assert unknown_type.json()["issue"][0]["code"] == "not-supported"


def test_update_new_version_and_update_as_create(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    created["gender"] = "female"
    updated = client.put(f"/Patient/{created['id']}", json=created, headers=JSON)
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["gender"] == "female"
    new_id = f"chosen-{uuid.uuid4().hex[:12]}"
    as_create = client.put(f"/Patient/{new_id}", json=patient(id=new_id), headers=JSON)
    assert as_create.status_code == 201
    assert as_create.json()["id"] == new_id
    assert as_create.json()["meta"]["versionId"] == "1"


def test_update_id_mismatch_is_400(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    response = client.put(f"/Patient/{created['id']}", json=patient(id="other"), headers=JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["id"]


def test_if_match_locking(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    ok = client.put(
        f"/Patient/{created['id']}", json=created, headers={**JSON, "if-match": 'W/"1"'}
    )
    assert ok.status_code == 200
    stale = client.put(
        f"/Patient/{created['id']}", json=created, headers={**JSON, "if-match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "2"


def test_conditional_create(client: httpx.Client) -> None:
    body = patient()
    ident = body["identifier"][0]
    condition = f"identifier={ident['system']}|{ident['value']}"
    first = client.post("/Patient", json=body, headers={**JSON, "if-none-exist": condition})
    assert first.status_code == 201
    second = client.post("/Patient", json=body, headers={**JSON, "if-none-exist": condition})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]


def test_conditional_update_and_delete(client: httpx.Client) -> None:
    body = patient()
    ident = body["identifier"][0]
    query = f"identifier={ident['system']}|{ident['value']}"
    created = client.put(f"/Patient?{query}", json=body, headers=JSON)
    assert created.status_code == 201
    body["gender"] = "male"
    updated = client.put(f"/Patient?{query}", json=body, headers=JSON)
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    deleted = client.delete(f"/Patient?{query}")
    assert deleted.status_code == 200
    assert client.get(f"/Patient/{created.json()['id']}").status_code == 410


def test_delete_tombstone(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    assert client.delete(f"/Patient/{created['id']}").status_code == 200
    gone = client.get(f"/Patient/{created['id']}")
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/Patient/{created['id']}/_history/1").status_code == 200
    assert client.get(f"/Patient/{created['id']}/_history/2").status_code == 410
    again = client.put(f"/Patient/{created['id']}", json=created, headers=JSON)
    assert again.status_code == 201
    assert again.json()["meta"]["versionId"] == "3"


def test_json_patch(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    ops = [
        {"op": "replace", "path": "/birthDate", "value": "1971-01-01"},
        {"op": "add", "path": "/name/0/given/-", "value": "Marie"},
    ]
    patched = client.patch(
        f"/Patient/{created['id']}",
        json=ops,
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["birthDate"] == "1971-01-01"
    assert patched.json()["name"][0]["given"] == ["Ann", "Marie"]
    assert patched.json()["meta"]["versionId"] == "2"
    failing = client.patch(
        f"/Patient/{created['id']}",
        json=[{"op": "test", "path": "/gender", "value": "male"}],
        headers={"content-type": "application/json-patch+json"},
    )
    assert failing.status_code == 422
    invalid = client.patch(
        f"/Patient/{created['id']}",
        json=[{"op": "replace", "path": "/birthDate", "value": "not-a-date"}],
        headers={"content-type": "application/json-patch+json"},
    )
    assert invalid.status_code == 400
    assert invalid.json()["issue"][0]["expression"] == ["Patient.birthDate"]
    assert client.get(f"/Patient/{created['id']}").json()["meta"]["versionId"] == "2"
    wrong_type = client.patch(f"/Patient/{created['id']}", json=ops, headers=JSON)
    assert wrong_type.status_code == 415


def test_prefer_return(client: httpx.Client) -> None:
    minimal = client.post("/Patient", json=patient(), headers={**JSON, "prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    outcome = client.post(
        "/Patient", json=patient(), headers={**JSON, "prefer": "return=OperationOutcome"}
    )
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_format_negotiation(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    assert client.get(f"/Patient/{created['id']}?_format=xml").status_code == 406
    xml_only = client.get(f"/Patient/{created['id']}", headers={"accept": "application/fhir+xml"})
    assert xml_only.status_code == 406
    assert xml_only.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/Patient/{created['id']}?_format=json").status_code == 200
    pretty = client.get(f"/Patient/{created['id']}?_pretty=true")
    assert b"\n  " in pretty.content
    assert pretty.json() == created


def test_summary_and_elements(client: httpx.Client) -> None:
    created = create(
        client,
        patient(
            text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
        ),
    ).json()
    summary = client.get(f"/Patient/{created['id']}?_summary=true").json()
    assert "text" not in summary
    assert summary["birthDate"] == "1970-05-06"
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = client.get(f"/Patient/{created['id']}?_elements=birthDate").json()
    assert set(elements) == {"resourceType", "id", "meta", "birthDate"}


def test_validation_error_points_at_element(client: httpx.Client) -> None:
    bad = patient(birthDate="1970-13-45")
    response = client.post("/Patient", json=bad, headers=JSON)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Patient.birthDate"]
    unknown = client.post("/Patient", json=patient(favouriteColour="blue"), headers=JSON)
    assert unknown.status_code == 400
    assert unknown.json()["issue"][0]["expression"] == ["Patient.favouriteColour"]


def test_capability_statement(client: httpx.Client, model: Any) -> None:
    response = client.get("/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    resources = body["rest"][0]["resource"]
    assert {r["type"] for r in resources} == set(model.resource_types)
    patient_entry = next(r for r in resources if r["type"] == "Patient")
    from cmio.search.request import searchable

    names = {p["name"] for p in patient_entry["searchParam"]}
    assert names == {spd.code for spd in searchable(model, "Patient")}
    assert {
        "_id",
        "_lastUpdated",
        "identifier",
        "name",
        "birthdate",
        "general-practitioner",
    } <= names
    assert {"_text", "_content"} <= names  # full-text search (issue 4)


def test_home_page_counts(server: Any) -> None:
    with httpx.Client(timeout=30) as http:
        before = http.get(server.base.removesuffix("/fhir") + "/")
        assert before.status_code == 200
        assert "<h1>cmio</h1>" in before.text
        assert ">Patient</a>" in before.text


def test_capability_statement_lists_named_operations(client: httpx.Client) -> None:
    """Every operation of the router's table is stated where it can be invoked."""
    from cmio.api.operations import default_operations

    body = client.get("/metadata").json()
    rest = body["rest"][0]
    by_type = {r["type"]: {o["name"] for o in r.get("operation", [])} for r in rest["resource"]}
    table = default_operations()
    for op in table.values():
        for rtype in op.types or ():
            assert op.name in by_type[rtype], (op.name, rtype)
    assert {"expand", "validate-code"} <= by_type["ValueSet"]
    assert "everything" in by_type["Patient"]
    assert "expand" not in by_type["Patient"]
    system = {o["name"] for o in rest["operation"]}
    assert system == {op.name for op in table.values() if op.system}
    assert "reindex" in system
    expand = next(
        o
        for r in rest["resource"]
        if r["type"] == "ValueSet"
        for o in r["operation"]
        if o["name"] == "expand"
    )
    assert expand["definition"] == "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"
