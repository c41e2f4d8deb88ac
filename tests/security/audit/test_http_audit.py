"""Over HTTP with authentication on: the token's user, client, jti and address are recorded,
and so are logins and failed logins."""

from __future__ import annotations

import base64
import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cmio.api.app import CmioApp
from cmio.api.env import Settings
from cmio.model import Model
from cmio.testing.auth import auth_app, auth_server, bearer, mint_token
from cmio.testing.server import ServerThread


@pytest.fixture
def app(store_url: str, tmp_path: Path, model: Model) -> Iterator[tuple[CmioApp, ServerThread]]:
    settings = Settings(validation="off", terminology_db=None, audit=True)
    application = auth_app(store_url, tmp_path, model=model, settings=settings)
    with ServerThread(application, close_app=True) as running:
        yield application, running


def _records(app: CmioApp) -> list[dict[str, Any]]:
    assert app.env.auditor is not None
    return [orjson.loads(row.data) for row in app.env.auditor.log.rows()]


def test_http_interactions_are_recorded_with_the_token(app: tuple[CmioApp, ServerThread]) -> None:
    application, server = app
    token = mint_token(
        application, server.base, roles=["administrator"],
        fhir_user="Practitioner/pr9",
        subject="dr-who", client_id="chart-app",
    )  # fmt: skip
    headers = {**bearer(token), "content-type": "application/fhir+json"}
    created = httpx.post(server.base + "/Patient", headers=headers,
                         content=json.dumps({"resourceType": "Patient"}))  # fmt: skip
    assert created.status_code == 201, created.text
    pid = created.json()["id"]

    def read(_: int) -> int:
        return httpx.get(f"{server.base}/Patient/{pid}", headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # reads share group commits
        assert set(pool.map(read, range(20))) == {200}
    search = httpx.get(server.base + "/Patient", params={"_id": pid}, headers=headers)
    assert search.status_code == 200
    stale = httpx.put(f"{server.base}/Patient/{pid}", headers={**headers, "if-match": 'W/"9"'},
                      content=json.dumps({"resourceType": "Patient", "id": pid}))  # fmt: skip
    assert stale.status_code == 412  # a failed write, recorded inside the writer's batch
    got = _records(application)
    codes = [(e["subtype"][0]["code"], e["outcome"]) for e in got]
    # reads' records reach the chain through the audit journal (up to ~0.1 s later), the
    # failed write's directly in the writer's transaction: the set is exact, not the order
    assert sorted(codes) == sorted(
        [("create", "0")] + [("read", "0")] * 20 + [("search-type", "0"), ("update", "4")]
    )
    assert codes[0] == ("create", "0")
    token_jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["jti"]
    for event in got:
        user = next(a for a in event["agent"] if a["requestor"])
        assert user["who"]["identifier"]["value"] == "dr-who"
        assert user["who"]["reference"] == "Practitioner/pr9"
        assert user["policy"] == [f"urn:ietf:params:oauth:jti:{token_jti}"]
        assert user["role"][0]["coding"][0]["code"] == "administrator"
        client = event["agent"][0]
        assert client["who"]["identifier"]["value"] == "chart-app"
        assert client["network"]["address"] == "127.0.0.1"
        if event["action"] != "E":
            assert event["entity"][0]["what"]["reference"] == f"Patient/{pid}"
    auditor = application.env.auditor
    assert auditor is not None
    assert auditor.log.verify().ok

    def broken(events: Any) -> Any:
        raise RuntimeError("audit table unavailable")

    auditor.log.append_now = broken  # type: ignore[method-assign]
    if auditor.journal is not None:  # the embedded store's reads: the journal's write
        auditor.journal.append = broken  # type: ignore[method-assign]
    unaudited = httpx.get(f"{server.base}/Patient/{pid}", headers=headers)
    assert unaudited.status_code == 503 and pid not in unaudited.text


def test_logins_and_failed_logins(app: tuple[CmioApp, ServerThread]) -> None:
    application, server = app
    auth = auth_server(application)
    auth.users.add("nurse1", "correct horse battery", ["clinician"])
    assert auth.login("nurse1", "wrong password!!", server.base, "10.9.8.7") is None
    assert auth.login("nurse1", "correct horse battery", server.base, "10.9.8.7") is not None
    got = [e for e in _records(application) if e["type"]["code"] == "110114"]
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in got] == [
        ("110122", "4"),
        ("110122", "0"),
    ]
    assert got[0]["agent"][0]["network"]["address"] == "10.9.8.7"
    assert got[0]["agent"][2]["who"]["identifier"]["value"] == "nurse1"
