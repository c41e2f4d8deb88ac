"""Every interaction over the router writes exactly one BALP record with the right fields."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.audit import Auditor
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.security.grant import AccessGrant
from cmio.store.base import Repository, SearchQuery

GRANT = AccessGrant(
    subject="alice",
    kind="user",
    scopes=frozenset({"user/*.cruds"}),
    roles=frozenset({"administrator"}),
    fhir_user="Practitioner/pr1",
    client_id="chart-app",
    token_id="jti-42",
)


@pytest.fixture
def router(repository: Repository, model: Model) -> Iterator[FhirRouter]:
    env = Env(repository, model, lambda r: [], Settings(validation="off", terminology_db=None))
    env.auditor = Auditor(repository)
    yield FhirRouter(env)
    env.auditor.close()


def call(
    router: FhirRouter,
    method: str,
    path: str,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> FhirResponse:
    context = RequestContext(grant=GRANT, remote_addr="10.1.2.3", correlation_id="corr-1")
    request = FhirRequest(
        method,
        path,
        query or [],
        {"content-type": "application/fhir+json", **(headers or {})},
        b"" if body is None else orjson.dumps(body),
        "http://cmio.test/fhir",
        context,
    )
    return router.handle(request)


def records(router: FhirRouter) -> list[dict[str, Any]]:
    auditor = router.env.auditor
    assert auditor is not None
    return [orjson.loads(row.data) for row in auditor.log.rows()]


def _refs(event: dict[str, Any]) -> list[str]:
    entities = event.get("entity", [])
    return [e["what"]["reference"] for e in entities if "reference" in e.get("what", {})]


PATIENT = {"resourceType": "Patient", "name": [{"family": "Doe"}]}


def _obs(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "pulse"},
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_each_interaction_writes_one_record(router: FhirRouter) -> None:
    pid = orjson.loads(call(router, "POST", "Patient", PATIENT).body)["id"]
    oid = orjson.loads(call(router, "POST", "Observation", _obs(pid)).body)["id"]
    done = len(records(router))
    assert done == 2
    cases: list[tuple[str, str, Any, list[tuple[str, str]], str, str]] = [
        ("GET", f"Observation/{oid}", None, [], "read", "R"),
        ("GET", f"Observation/{oid}/_history/1", None, [], "vread", "R"),
        ("PUT", f"Observation/{oid}", {**_obs(pid), "id": oid, "status": "amended"}, [],
         "update", "U"),
        ("GET", "Observation", None, [("subject", f"Patient/{pid}")], "search-type", "E"),
        ("GET", "", None, [("_type", "Patient")], "search-system", "E"),
        ("GET", f"Patient/{pid}/Observation", None, [], "search-compartment", "E"),
        ("GET", f"Observation/{oid}/_history", None, [], "history-instance", "R"),
        ("GET", "Observation/_history", None, [], "history-type", "R"),
        ("GET", "_history", None, [], "history-system", "R"),
        ("GET", f"Patient/{pid}/$everything", None, [], "operation", "E"),
        ("DELETE", f"Observation/{oid}", None, [], "delete", "D"),
        ("GET", f"Observation/{oid}", None, [], "read", "R"),  # 410 Gone: a failure
    ]  # fmt: skip
    for method, path, body, query, interaction, action in cases:
        response = call(router, method, path, body, query)
        got = records(router)
        assert len(got) == done + 1, (method, path, response.status)
        done += 1
        event = got[-1]
        assert event["subtype"][0]["code"] == interaction, path
        assert event["action"] == action
        assert event["outcome"] == ("0" if response.status < 400 else "4")
        user = next(a for a in event["agent"] if a["requestor"])
        assert user["who"]["reference"] == "Practitioner/pr1"
        assert user["policy"] == ["urn:ietf:params:oauth:jti:jti-42"]
        client = next(a for a in event["agent"] if a["type"]["coding"][1]["code"] == "110153")
        assert client["network"]["address"] == "10.1.2.3"
        no_patient = ("search-system", "history-type", "history-system")
        if interaction not in no_patient and response.status < 400:
            assert f"Patient/{pid}" in _refs(event), (path, event.get("entity"))
        if interaction in ("read", "vread", "update", "delete") and response.status < 400:
            assert any(r.startswith(f"Observation/{oid}/_history/") for r in _refs(event))
        if interaction.startswith("search"):
            query_entity = next(e for e in event["entity"] if "query" in e)
            assert base64.b64decode(query_entity["query"]).decode() == "&".join(
                f"{k}={v}".replace("/", "%2F") for k, v in query
            )
    assert got[-1]["outcome"] == "4" and "deleted" in got[-1]["outcomeDesc"]
    patched = call(
        router, "PATCH", f"Patient/{pid}", [{"op": "add", "path": "/active", "value": True}],
        headers={"content-type": "application/json-patch+json"},
    )  # fmt: skip
    assert patched.status == 200, patched.body
    got = records(router)
    assert len(got) == done + 1
    assert (got[-1]["subtype"][0]["code"], got[-1]["action"]) == ("patch", "U")
    assert f"Patient/{pid}/_history/2" in _refs(got[-1])


def test_post_search_records_the_form_query(router: FhirRouter) -> None:
    pid = orjson.loads(call(router, "POST", "Patient", PATIENT).body)["id"]
    context = RequestContext(grant=GRANT)
    form = f"subject=Patient/{pid}&_count=5".encode()
    request = FhirRequest(
        "POST", "Observation/_search", [],
        {"content-type": "application/x-www-form-urlencoded"}, form, context=context,
    )  # fmt: skip
    assert router.handle(request).status == 200
    event = records(router)[-1]
    assert event["subtype"][0]["code"] == "search-type"
    query = next(e for e in event["entity"] if "query" in e)
    assert base64.b64decode(query["query"]).decode() == f"subject=Patient%2F{pid}&_count=5"
    assert f"Patient/{pid}" in _refs(event)


def test_bundles(router: FhirRouter) -> None:
    pid = orjson.loads(call(router, "POST", "Patient", PATIENT).body)["id"]
    before = len(records(router))
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    assert call(router, "POST", "", transaction).status == 200
    got = records(router)[before:]
    assert [e["subtype"][0]["code"] for e in got] == ["create", "create", "transaction"]
    assert all(f"Patient/{pid}" in _refs(e) for e in got[:2])
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{pid}"}},
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    before = len(records(router))
    assert call(router, "POST", "", batch).status == 200
    got = records(router)[before:]
    assert sorted(e["subtype"][0]["code"] for e in got) == ["batch", "create", "read"]


def test_failed_write_leaves_only_a_failure_record(router: FhirRouter) -> None:
    pid = orjson.loads(call(router, "POST", "Patient", PATIENT).body)["id"]
    before = len(records(router))
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _obs(pid), "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "DELETE", "url": "Observation/x"}, "resource": {}},
            {"request": {"method": "PUT", "url": "Observation/nope"},
             "resource": {"resourceType": "Patient", "id": "nope"}},
        ],
    }  # fmt: skip
    response = call(router, "POST", "", bad)
    assert response.status >= 400
    got = records(router)[before:]
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in got] == [("transaction", "4")]
    conflict = call(router, "PUT", f"Patient/{pid}", {**PATIENT, "id": pid},
                    headers={"if-match": 'W/"9"'})  # fmt: skip
    assert conflict.status == 412
    last = records(router)[-1]
    assert (last["subtype"][0]["code"], last["outcome"], last["action"]) == ("update", "4", "U")


def test_write_whose_audit_fails_rolls_back(router: FhirRouter, repository: Repository) -> None:
    auditor = router.env.auditor
    assert auditor is not None
    original = auditor.log.append

    def failing(tx: Any, events: Any) -> Any:
        rows = original(tx, events)  # the row is written, then the transaction must roll back
        auditor.log.append = original  # type: ignore[method-assign]
        if events[0]["outcome"] == "0":
            raise RuntimeError("disk full")
        return rows

    before = len(records(router))
    auditor.log.append = failing  # type: ignore[method-assign]
    try:
        response = call(router, "POST", "Patient", PATIENT)
    finally:
        auditor.log.append = original  # type: ignore[method-assign]
    assert response.status == 503
    assert repository.search(SearchQuery("Patient")).total == 0
    got = records(router)[before:]
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in got] == [("create", "8")]


def test_read_whose_audit_fails_gets_503(router: FhirRouter) -> None:
    pid = orjson.loads(call(router, "POST", "Patient", PATIENT).body)["id"]
    auditor = router.env.auditor
    assert auditor is not None

    def broken(events: Any) -> Any:
        raise RuntimeError("audit table unavailable")

    auditor.log.append_now = broken  # type: ignore[method-assign]
    if auditor.journal is not None:  # the embedded store's reads: the journal's write
        auditor.journal.append = broken  # type: ignore[method-assign]
    response = call(router, "GET", f"Patient/{pid}")
    assert response.status == 503
    assert b"audit" in response.body and pid.encode() not in response.body
