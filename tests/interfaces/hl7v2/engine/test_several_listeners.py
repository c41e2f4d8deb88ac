"""One engine, several MLLP listeners (docs/scaling.md): each channel on its own port with
its own acceptance rules, both feeding one FHIR store through one journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.mllp import MllpClient
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import RunningEngine, adt, channel, oru


def _search(client: RouterClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    status, body = client.request("GET", rtype, list(params.items()), None)
    assert status == 200, body
    return [e["resource"] for e in body.get("entry", [])]


def test_two_listeners_one_store(tmp_path: Path) -> None:
    env = build_env(f"sqlite:///{tmp_path / 'store.db'}", Settings(terminology_db=None))
    router = FhirRouter(env)
    registration = channel(tmp_path, name="adt", accept={"message_types": ["ADT^A08"]})
    lab = channel(tmp_path, name="lab", accept={"message_types": ["ORU^R01"]})
    engine = Engine(
        [registration, lab],
        RouterSink(router),
        journal=tmp_path / "journal.db",
        supported_types=frozenset(SUPPORTED),
    )
    try:
        with RunningEngine(engine) as run:
            assert run.ports["adt"] != run.ports["lab"]
            with (
                MllpClient("127.0.0.1", run.ports["adt"], timeout=30) as to_adt,
                MllpClient("127.0.0.1", run.ports["lab"], timeout=30) as to_lab,
            ):
                acks = {
                    "adt": parse(to_adt.send(adt("A1", "MRN77", family="LISTENER"))),
                    "lab": parse(to_lab.send(oru("L1", "MRN77"))),
                    "lab refuses ADT": parse(to_lab.send(adt("A2", "MRN78"))),
                    "adt refuses ORU": parse(to_adt.send(oru("L2", "MRN78"))),
                }
            assert engine.drain(60)
            rows = engine.journal.rows()
    finally:
        engine.close()
    codes = {name: ack.value("MSA-1") for name, ack in acks.items()}
    assert codes == {"adt": "AA", "lab": "AA", "lab refuses ADT": "AR", "adt refuses ORU": "AR"}
    processed = {(r["channel"], r["control_id"]) for r in rows if r["state"] == "processed"}
    assert processed == {("adt", "A1"), ("lab", "L1")}
    client = RouterClient(router)
    (patient,) = _search(client, "Patient", identifier="MRN77")
    assert patient["name"][0]["family"] == "LISTENER"
    observations = _search(client, "Observation", subject=f"Patient/{patient['id']}")
    assert len(observations) == 3  # the lab channel's ORU, matched to the ADT's patient
    assert not _search(client, "Patient", identifier="MRN78")  # refused: nothing stored
    env.repository.close()
