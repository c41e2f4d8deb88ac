"""``/cds-services`` calls are audited: service, patient, caller and outcome, durable before
the answer; a call whose record cannot be written is refused (503)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.cds_hooks import CdsHooks
from cmio.api.env import Env, Settings
from cmio.cds import install_starter_services
from cmio.security.audit import AuditLog
from cmio.security.grant import AccessGrant

BASE = "http://cmio.test/fhir"
GRANT = AccessGrant(
    "drwho", "user", frozenset({"user/*.rs"}), client_id="ehr", roles=frozenset({"clinician"})
)


@pytest.fixture
def env(store_url: str) -> Iterator[Env]:
    env = build_env(store_url, Settings(terminology_db=None, validation="off", audit=True))
    install_starter_services(env.repository)
    yield env
    assert env.auditor is not None
    env.auditor.close()
    env.repository.close()


def request(patient: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr1", "patientId": patient},
        "prefetch": {"patient": {"resourceType": "Patient", "id": patient}},
    }


def trail(env: Env) -> list[dict[str, Any]]:
    return [orjson.loads(row.data) for row in AuditLog(env.repository).rows()]


def test_cds_calls_are_recorded(env: Env) -> None:
    cds = CdsHooks(env)
    service = next(iter(cds._services()))
    body = request("p1")
    status, _ = cds.invoke(service, body, GRANT, BASE, remote_addr="10.1.2.3")
    missing, _ = cds.invoke("no-such-service", request("p2"), None, BASE, client="https://ehr.x")
    assert (status, missing) == (200, 404)
    done, refused = trail(env)[-2:]
    assert [c["code"] for c in done["subtype"]] == ["operation", f"cds-services/{service}"]
    assert done["outcome"] == "0" and done["action"] == "E"
    assert {"reference": "Patient/p1"} in [e.get("what") for e in done["entity"]]
    assert {"identifier": {"value": body["hookInstance"]}} in [
        e.get("what") for e in done["entity"]
    ]
    user = next(a for a in done["agent"] if a["requestor"])
    assert user["who"]["identifier"]["value"] == "drwho"
    client = next(a for a in done["agent"] if a.get("network", {}).get("type") == "2")
    assert client["network"]["address"] == "10.1.2.3"
    assert refused["outcome"] == "4" and "no-such-service" in refused["outcomeDesc"]
    caller = next(a for a in refused["agent"] if a["requestor"])
    assert caller["who"]["identifier"] == {
        "system": "urn:cmio:cds-client",
        "value": "https://ehr.x",
    }
    assert AuditLog(env.repository).verify().ok


def test_a_call_whose_record_fails_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert env.auditor is not None

    def broken(facts: Any) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(env.auditor, "record", broken)
    cds = CdsHooks(env)
    status, answer = cds.invoke(next(iter(cds._services())), request("p1"), GRANT, BASE)
    assert status == 503 and "cards" not in answer


def test_feedback_is_recorded_with_it(env: Env) -> None:
    """Stored feedback (a Basic per item) has its create records, committed together."""
    from cmio.api.cds_audit import feedback_recorder
    from cmio.cds import parse_feedback, store_feedback

    body = {
        "feedback": [
            {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-01-02"}
        ]
    }
    items = parse_feedback(body)
    record = feedback_recorder("drug-allergy", None, BASE, "https://ehr.x", "10.1.2.3")
    (stored,) = store_feedback(env.repository, "drug-allergy", items, record)
    (event,) = trail(env)[-1:]
    assert event["action"] == "C"
    assert {"reference": f"Basic/{stored}/_history/1"} in [e.get("what") for e in event["entity"]]
    caller = next(a for a in event["agent"] if a["requestor"])
    assert caller["who"]["identifier"] == {
        "system": "urn:cmio:cds-client",
        "value": "https://ehr.x",
    }
    assert AuditLog(env.repository).verify().ok

    def broken(tx: Any, written: Any) -> None:
        raise RuntimeError("audit table unavailable")

    before = len(trail(env))
    with pytest.raises(RuntimeError):
        store_feedback(env.repository, "drug-allergy", items, broken)
    assert len(trail(env)) == before  # neither the feedback nor a record
    basics = [r for r in env.repository.iter_current(["Basic"]) if r.id != stored]
    assert not [b for b in basics if "CDS feedback" in (b.data or "")]
