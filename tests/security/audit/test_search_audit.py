"""Privacy officers search the trail with the normal FHIR search; clients cannot write it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.audit import Auditor
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.indexing import SearchIndexer
from cmio.model import Model
from cmio.security.grant import AccessGrant
from cmio.store import open_repository
from cmio.store.base import Repository, SearchQuery

ADMIN = AccessGrant(
    "alice", "user", frozenset({"user/*.cruds"}), roles=frozenset({"administrator"}),
    fhir_user="Practitioner/alice",
)  # fmt: skip
OTHER = AccessGrant(
    "bob", "user", frozenset({"user/*.cruds"}), roles=frozenset({"administrator"}),
    fhir_user="Practitioner/bob",
)  # fmt: skip
OFFICER = AccessGrant(
    "pat", "user", frozenset({"user/AuditEvent.rs"}), roles=frozenset({"privacy-officer"})
)


@pytest.fixture
def repository(store_url: str, model: Model) -> Iterator[Repository]:
    repo = open_repository(store_url, indexer=SearchIndexer(model))
    yield repo
    repo.close()


@pytest.fixture
def router(repository: Repository, model: Model) -> Iterator[FhirRouter]:
    env = Env(repository, model, lambda r: [], Settings(validation="off", terminology_db=None))
    env.auditor = Auditor(repository)
    yield FhirRouter(env)
    env.auditor.close()


def call(
    router: FhirRouter, grant: AccessGrant, method: str, path: str, body: Any = None,
    query: list[tuple[str, str]] | None = None,
) -> FhirResponse:  # fmt: skip
    request = FhirRequest(
        method, path, query or [], {"content-type": "application/fhir+json"},
        b"" if body is None else orjson.dumps(body), context=RequestContext(grant=grant),
    )  # fmt: skip
    return router.handle(request)


def _ids(response: FhirResponse) -> list[dict[str, Any]]:
    assert response.status == 200, response.body
    return [e["resource"] for e in orjson.loads(response.body).get("entry", [])]


def test_search_by_patient_agent_action_and_date(router: FhirRouter) -> None:
    p1 = orjson.loads(call(router, ADMIN, "POST", "Patient", {"resourceType": "Patient"}).body)
    p2 = orjson.loads(call(router, OTHER, "POST", "Patient", {"resourceType": "Patient"}).body)
    for _ in range(3):
        call(router, ADMIN, "GET", f"Patient/{p1['id']}")
    call(router, OTHER, "GET", f"Patient/{p2['id']}")
    search = [("patient", f"Patient/{p1['id']}")]
    found = _ids(call(router, OFFICER, "GET", "AuditEvent", query=search))
    assert sorted(e["action"] for e in found) == ["C", "R", "R", "R"]
    by_agent = _ids(call(router, OFFICER, "GET", "AuditEvent",
                         query=[("agent", "Practitioner/bob"), ("action", "R")]))  # fmt: skip
    assert [e["entity"][0]["what"]["reference"] for e in by_agent] == [f"Patient/{p2['id']}"]
    first = min(e["recorded"] for e in found)
    since = _ids(call(router, OFFICER, "GET", "AuditEvent",
                      query=[("date", f"ge{first}"), ("patient", p2["id"])]))  # fmt: skip
    assert len(since) == 2
    # the officer's own searches are on the trail, found by the next search
    mine = _ids(call(router, OFFICER, "GET", "AuditEvent", query=[("action", "E")]))
    assert len(mine) == 3
    assert all(e["agent"][2]["who"]["identifier"]["value"] == "pat" for e in mine)


def test_clients_cannot_write_audit_events(router: FhirRouter, repository: Repository) -> None:
    forged = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded":
              "2026-01-01T00:00:00Z", "agent": [{"requestor": True}], "source": {"observer": {}}}  # fmt: skip
    for grant in (ADMIN, AccessGrant.unrestricted()):  # authorization, else the audit trail
        assert call(router, grant, "POST", "AuditEvent", forged).status in (403, 405)
    assert call(router, AccessGrant.unrestricted(), "POST", "AuditEvent", forged).status == 405
    stored = repository.search(SearchQuery("AuditEvent")).resources
    assert not [s for s in stored if s.data and b"2026-01-01T00:00:00Z" in s.data]
    assert router.env.auditor is not None
    last = orjson.loads(list(router.env.auditor.log.rows())[-1].data)
    assert (last["subtype"][0]["code"], last["outcome"]) == ("create", "4")
