"""The search parameters this issue needs: _id, _lastUpdated, identifier; paging and errors."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx

from tests.api.test_crud import create, patient


def test_search_by_id_and_identifier(client: httpx.Client) -> None:
    a = create(client, patient()).json()
    b = create(client, patient()).json()
    by_id = client.get("/Patient", params={"_id": f"{a['id']},{b['id']}"}).json()
    assert by_id["type"] == "searchset"
    assert by_id["total"] == 2
    assert {e["resource"]["id"] for e in by_id["entry"]} == {a["id"], b["id"]}
    assert all(e["search"]["mode"] == "match" for e in by_id["entry"])
    ident = a["identifier"][0]
    for value in (f"{ident['system']}|{ident['value']}", ident["value"], f"|{ident['value']}"):
        found = client.get("/Patient", params={"identifier": value}).json()
        expected = 0 if value.startswith("|") else 1
        assert found["total"] == expected, value


def test_last_updated_and_paging(client: httpx.Client) -> None:
    start = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    system = f"urn:test:{uuid.uuid4().hex}"
    ids = [
        create(client, patient(identifier=[{"system": system, "value": str(i)}])).json()["id"]
        for i in range(5)
    ]
    page = client.get(
        "/Patient",
        params={
            "_lastUpdated": f"ge{start}",
            "_count": 2,
            "_sort": "_lastUpdated",
            "_total": "accurate",
        },
    ).json()
    assert page["total"] == 5
    assert [e["resource"]["id"] for e in page["entry"]] == ids[:2]
    seen = [e["resource"]["id"] for e in page["entry"]]
    while (
        nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    ) is not None:
        page = httpx.get(nxt).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == ids
    count_only = client.get(
        "/Patient", params={"_lastUpdated": f"ge{start}", "_summary": "count"}
    ).json()
    assert count_only["total"] == 5
    assert "entry" not in count_only
    future = client.get("/Patient", params={"_lastUpdated": "gt2999-01-01"}).json()
    assert future["total"] == 0


def test_unknown_parameters(client: httpx.Client) -> None:
    strict = client.get("/Patient", params={"favourite-colour": "blue"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["favourite-colour"]
    lenient = client.get(
        "/Patient",
        params={"favourite-colour": "blue", "_count": 1},
        headers={"prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "favourite-colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert client.get("/Patient", params={"_count": "many"}).status_code == 400


def test_post_search(client: httpx.Client) -> None:
    a = create(client, patient()).json()
    response = client.post("/Patient/_search", data={"_id": a["id"]})
    assert response.status_code == 200
    assert response.json()["entry"][0]["resource"]["id"] == a["id"]


def test_system_search(client: httpx.Client) -> None:
    a = create(client, patient()).json()
    found = client.get("", params={"_type": "Patient", "_id": a["id"]}).json()
    assert found["type"] == "searchset"
    assert [e["resource"]["id"] for e in found["entry"]] == [a["id"]]
    posted = client.post("/_search", data={"_type": "Patient", "_id": a["id"]})
    assert posted.status_code == 200
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == [a["id"]]
