"""History at instance, type and system level with _since, _at and paging."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from tests.api.test_crud import JSON, create, patient


def test_instance_history(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    rid = created["id"]
    for gender in ("male", "female"):
        created["gender"] = gender
        client.put(f"/Patient/{rid}", json=created, headers=JSON)
    client.delete(f"/Patient/{rid}")
    bundle = client.get(f"/Patient/{rid}/_history").json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 4
    versions = [e["response"]["etag"] for e in bundle["entry"]]
    assert versions == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert bundle["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in bundle["entry"][0]
    assert bundle["entry"][1]["resource"]["gender"] == "female"
    paged = client.get(f"/Patient/{rid}/_history?_count=2").json()
    assert len(paged["entry"]) == 2
    next_url = next(link["url"] for link in paged["link"] if link["relation"] == "next")
    second = httpx.get(next_url).json()
    assert [e["response"]["etag"] for e in second["entry"]] == ['W/"2"', 'W/"1"']
    assert client.get("/Patient/never-existed/_history").status_code == 404


def test_since_and_at(client: httpx.Client) -> None:
    created = create(client, patient()).json()
    rid = created["id"]
    time.sleep(0.02)
    middle = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.02)
    created["gender"] = "other"
    client.put(f"/Patient/{rid}", json=created, headers=JSON)
    since = client.get(f"/Patient/{rid}/_history", params={"_since": middle}).json()
    assert [e["response"]["etag"] for e in since["entry"]] == ['W/"2"']
    at = client.get(f"/Patient/{rid}/_history", params={"_at": middle}).json()
    assert [e["response"]["etag"] for e in at["entry"]] == ['W/"1"']
    assert client.get(f"/Patient/{rid}/_history", params={"_since": "yesterday"}).status_code == 400


def test_type_and_system_history(client: httpx.Client) -> None:
    start = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    a = create(client, patient()).json()
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": f"Patient/{a['id']}"},
    }
    o = create(client, obs).json()
    typed = client.get("/Patient/_history", params={"_since": start}).json()
    assert [e["resource"]["id"] for e in typed["entry"]] == [a["id"]]
    system = client.get("/_history", params={"_since": start}).json()
    assert [e["resource"]["id"] for e in system["entry"]] == [o["id"], a["id"]]
    assert system["total"] == 2
    assert client.get("/_history", params={"bogus": "1"}).status_code == 400
