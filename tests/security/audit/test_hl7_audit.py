"""HL7 v2 engine writes are audited: the sender is the agent, MSH-10 an entity, and every
version a message writes has its create/update record, committed with the message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.hl7 import RouterSink
from cmio.api.router import FhirRouter
from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.destinations import SinkItem
from cmio.interfaces.hl7v2.engine.mllp import MllpClient
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from cmio.interfaces.hl7v2.parser import parse
from cmio.security.audit import AuditLog
from tests.interfaces.hl7v2.engine.conftest import RunningEngine, adt, channel, oru

FEED = [
    adt("A-1", "MRN1"),
    oru("O-1", "MRN1", sender="LAB"),
    oru("O-2", "MRN2", sender="LAB2"),
    adt("A-2", "MRN1", family="ROE"),  # the same patient again: an update
]


@pytest.fixture
def env(store_url: str) -> Iterator[Env]:
    env = build_env(store_url, Settings(terminology_db=None, audit=True))
    yield env
    assert env.auditor is not None
    env.auditor.close()
    env.repository.close()


def records(env: Env) -> list[dict[str, Any]]:
    return [orjson.loads(row.data) for row in AuditLog(env.repository).rows()]


def stored_versions(env: Env) -> set[str]:
    """``Type/id/_history/v`` of every version in the store."""
    out: set[str] = set()
    with env.repository.read_transaction() as tx:
        cursor = None
        while batch := tx.scan(cursor, 500):  # type: ignore[arg-type]
            for s in batch:
                out.update(f"{s.type}/{s.id}/_history/{v}" for v in range(1, s.version + 1))
            cursor = (batch[-1].type, batch[-1].id)
    return out


def control_id(event: dict[str, Any]) -> str | None:
    for entity in event.get("entity", []):
        for detail in entity.get("detail", []):
            if detail.get("type") == "MSH-10":
                return str(detail["valueString"])
    return None


def test_every_version_a_feed_writes_has_its_record(
    tmp_path: Path, env: Env, store_url: str
) -> None:
    engine = Engine(
        [channel(tmp_path)], RouterSink(FhirRouter(env)), supported_types=frozenset(SUPPORTED)
    )
    with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port, timeout=30) as mllp:
        for raw in FEED:
            assert parse(mllp.send(raw)).value("MSA-1") == "AA"
        assert engine.drain(120)
        assert {r["state"] for r in engine.journal.rows()} == {"processed"}
    events = records(env)
    written: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    for event in events:
        subtype = event["subtype"][0]["code"]
        if subtype not in ("create", "update"):
            continue
        refs = [
            e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "4"
        ]
        assert len(refs) == 1
        written[refs[0]] = (event["action"], control_id(event), event)
    versions = stored_versions(env)
    assert versions and versions <= set(written)  # nothing written unaudited
    senders = {"A-1": "REG|HOSP", "A-2": "REG|HOSP", "O-1": "LAB|HOSP", "O-2": "LAB2|HOSP"}
    for ref in versions:
        action, control, event = written[ref]
        assert action == ("C" if ref.endswith("/_history/1") else "U")
        assert control in senders
        requestor = next(a for a in event["agent"] if a["requestor"])
        assert requestor["who"]["identifier"] == {
            "system": "urn:cmio:hl7v2:test",
            "value": senders[control],
        }
    patients = [r for r in versions if r.startswith("Patient/")]
    assert any(r.endswith("/_history/2") for r in patients)  # A-2 updated MRN1
    # the Bundle of each message is recorded too, by the same source
    bundles = {control_id(e) for e in events if e["subtype"][0]["code"] == "transaction"}
    assert bundles == set(senders)
    result = CliRunner().invoke(app, ["audit", "verify", "--database", store_url])
    assert result.exit_code == 0, result.output


def _item(control: str, mrn: str, marker: dict[str, Any]) -> SinkItem:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{mrn.encode().hex():0>12}",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:test:mrn", "value": mrn}],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    return SinkItem(bundle, None, marker, channel="c", sender="S|F", control_id=control)


def _marker(mid: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "id": mid,
        "target": [{"display": "m"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"display": "S"}}],
    }


def test_a_message_that_fails_leaves_neither_resources_nor_records(env: Env) -> None:
    sink = RouterSink(FhirRouter(env))
    good, refused = (
        _item("GOOD", "M-GOOD", _marker("m-good")),
        _item("BAD", "M-BAD", _marker("x y")),
    )
    outcomes = sink.apply([good, refused])
    assert [o.status for o in outcomes] == [200, 400]
    assert auditor_fails(env, sink) == 503
    events = records(env)
    controls = {control_id(e) for e in events}
    assert "GOOD" in controls and "BAD" not in controls and "BROKEN" not in controls
    mrns = {
        ident["value"]
        for ref in stored_versions(env)
        if ref.startswith("Patient/")
        for ident in _read(env, ref)["identifier"]
    }
    assert mrns == {"M-GOOD"}
    assert AuditLog(env.repository).verify().ok


def auditor_fails(env: Env, sink: RouterSink) -> int:
    """Apply one message while the audit table cannot be written: the store refuses it."""
    assert env.auditor is not None
    log = env.auditor.log
    original = log.append

    def broken(tx: Any, events: Any) -> Any:
        raise RuntimeError("audit table unavailable")

    log.append = broken  # type: ignore[method-assign]
    try:
        (outcome,) = sink.apply([_item("BROKEN", "M-BROKEN", _marker("m-broken"))])
    finally:
        log.append = original  # type: ignore[method-assign]
    return outcome.status


def _read(env: Env, ref: str) -> dict[str, Any]:
    rtype, rid, _, version = ref.split("/")
    data = env.repository.vread(rtype, rid, int(version)).data
    assert data is not None
    result: dict[str, Any] = orjson.loads(data)
    return result
