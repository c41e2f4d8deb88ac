"""BALP AuditEvents, the hash chain and the audit table on both backends."""

from __future__ import annotations

import base64

import orjson
import pytest

from cmio.security.audit import AuditFacts, AuditLog, build_event, canonical
from cmio.security.audit.chain import GENESIS, chain_rows, link, verify_rows
from cmio.security.audit.events import BALP, BTG, outcome_code
from cmio.security.grant import AccessGrant
from cmio.store.base import Repository

_GRANT = AccessGrant(
    subject="alice",
    kind="user",
    scopes=frozenset({"user/*.rs"}),
    roles=frozenset({"clinician"}),
    fhir_user="Practitioner/pr1",
    client_id="chart-app",
    token_id="tok-123",
)


def _agent(event: dict[str, object], code: str) -> dict[str, object]:
    agents = event["agent"]
    assert isinstance(agents, list)
    return next(a for a in agents if any(c["code"] == code for c in a["type"]["coding"]))


def test_patient_read_has_the_balp_shape() -> None:
    facts = AuditFacts(
        "read",
        grant=_GRANT,
        remote_addr="10.0.0.7",
        correlation_id="req-1",
        server="http://h/fhir",
        resource_type="Observation",
        resource_id="o1",
        version=3,
        patient="p1",
        status=200,
    )
    event = build_event(facts)
    assert event["meta"] == {"profile": [BALP + "PatientRead"]}
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": "read",
        "display": "read",
    }
    assert event["action"] == "R" and event["outcome"] == "0"
    user = _agent(event, "UserOauthAgent")
    assert user["requestor"] is True
    assert user["who"] == {
        "identifier": {"system": "urn:cmio:user", "value": "alice"},
        "reference": "Practitioner/pr1",
    }
    assert user["policy"] == ["urn:ietf:params:oauth:jti:tok-123"]
    assert user["role"][0]["coding"][0]["code"] == "clinician"
    client = _agent(event, "110153")
    assert client["who"]["identifier"]["value"] == "chart-app"
    assert client["network"] == {"address": "10.0.0.7", "type": "2"}
    assert _agent(event, "110152")["network"]["address"] == "http://h/fhir"
    entities = event["entity"]
    assert entities[0]["what"] == {"reference": "Patient/p1"}
    assert entities[0]["role"]["code"] == "1"
    assert entities[1]["what"] == {"reference": "Observation/o1/_history/3"}
    assert entities[1]["role"]["code"] == "4"
    assert entities[2]["what"]["identifier"]["value"] == "req-1"


def test_search_records_the_query_base64_and_break_glass() -> None:
    grant = AccessGrant("bob", "user", frozenset(), break_glass="unconscious patient in ED")
    event = build_event(
        AuditFacts("search-type", resource_type="Observation", query="code=1234-5&_count=5",
                   grant=grant, status=200)
    )  # fmt: skip
    assert event["action"] == "E" and event["meta"]["profile"] == [BALP + "Query"]
    query = next(e for e in event["entity"] if "query" in e)
    assert base64.b64decode(query["query"]) == b"code=1234-5&_count=5"
    assert event["purposeOfEvent"] == [{"coding": [BTG]}]
    btg = next(e for e in event["entity"] if e.get("description") == "break-the-glass")
    assert btg["detail"] == [{"type": "reason", "valueString": "unconscious patient in ED"}]


def test_failures_and_logins() -> None:
    assert [outcome_code(s) for s in (200, 201, 404, 403, 500, 503)] == [
        "0", "0", "4", "4", "8", "8",
    ]  # fmt: skip
    failed = build_event(AuditFacts("login", outcome="4", outcome_desc="bad password"))
    assert failed["type"]["code"] == "110114" and failed["subtype"][0]["code"] == "110122"
    assert failed["outcomeDesc"] == "bad password" and failed["action"] == "E"
    assert build_event(AuditFacts("logout"))["subtype"][0]["code"] == "110123"


def test_canonical_bytes_are_sorted_and_compact() -> None:
    assert canonical({"b": 1, "a": {"d": [1, 2], "c": "x"}}) == b'{"a":{"c":"x","d":[1,2]},"b":1}'


def test_chain_links_and_detects_each_tamper() -> None:
    events = [{"resourceType": "AuditEvent", "id": str(n), "recorded": "r"} for n in range(5)]
    rows = chain_rows(None, events)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].hash == link(GENESIS, canonical(events[0]))
    assert rows[1].hash == link(rows[0].hash, rows[1].data)
    assert verify_rows(rows).ok and verify_rows(rows).head == (5, rows[4].hash)
    edited = list(rows)
    edited[2] = edited[2]._replace(data=edited[2].data.replace(b'"2"', b'"9"'))
    assert verify_rows(edited).broken_at == 3
    assert verify_rows(rows[:1] + rows[2:]).broken_at == 2  # deleted
    swapped = [rows[0], rows[2]._replace(seq=2), rows[1]._replace(seq=3), *rows[3:]]
    assert verify_rows(swapped).broken_at == 2
    more = chain_rows((5, rows[4].hash), events[:1])
    assert more[0].seq == 6 and verify_rows(rows + more).ok


def test_the_table_keeps_the_chain(repository: Repository) -> None:
    log = AuditLog(repository, page=3)
    with repository.transaction() as tx:
        log.append(tx, [build_event(AuditFacts("read")) for _ in range(4)])
    log.append_now([build_event(AuditFacts("search-system", query="_type=Patient"))])
    with pytest.raises(RuntimeError), repository.transaction() as tx:
        log.append(tx, [build_event(AuditFacts("read"))])
        raise RuntimeError("rolled back")
    rows = list(log.rows())
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert orjson.loads(rows[4].data)["subtype"][0]["code"] == "search-system"
    report = log.verify()
    assert report.ok and report.count == 5 and log.head() == report.head
