"""The engine into a real FHIR store: every sample message over MLLP, merges, replay."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.ack import read_header, wanted
from cmio.interfaces.hl7v2.engine.destinations import marker_id
from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.mllp import MllpClient, frame
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import FakeStore, RunningEngine, channel, oru
from tests.interfaces.hl7v2.mapping import samples


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    path = tmp_path_factory.mktemp("hl7engine") / "store.db"
    env = build_env(f"sqlite:///{path}", Settings(terminology_db=None))
    yield env
    env.repository.close()


def search(client: RouterClient, rtype: str, **params: str) -> list[dict[str, Any]]:
    status, body = client.request("GET", rtype, [*params.items(), ("_count", "500")], None)
    assert status == 200, body
    return [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def test_every_sample_over_mllp_into_the_store(tmp_path: Path, env: Env) -> None:
    router = FhirRouter(env)
    client = RouterClient(router)
    engine = Engine([channel(tmp_path)], RouterSink(router), supported_types=frozenset(SUPPORTED))
    order = ["ADT_A01_EPIC", "ADT_A08_EPIC", "ADT_A28", "ADT_A31", "ADT_A11", "ADT_A40",
             "ORU_R01_V24", "ORU_R01_LAB_V231", "VXU_V04_CDC", "ORM_O01_V24", "SIU_S12_V28",
             "MDM_T02_TEXT"]  # fmt: skip
    codes: list[str] = []
    expected: list[str] = []
    with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port, timeout=30) as mllp:
        for name in order:
            raw = samples.ALL[name].encode()
            header = read_header(raw)
            assert header is not None
            if not header.enhanced:  # original mode
                expected.append("AA")
            elif wanted(header.accept_ack, "CA", default="AL"):
                expected.append("CA")
            else:  # MSH-15 ER: a committed message gets no answer; wait for its journal row
                with socket.create_connection(("127.0.0.1", run.port)) as quiet:
                    quiet.sendall(frame(raw))
                    while len(engine.journal.rows()) <= len(codes):
                        time.sleep(0.01)
                codes.append("-")
                expected.append("-")
                continue
            codes.append(parse(mllp.send(raw)).value("MSA-1"))
        resent = parse(mllp.send(samples.ALL["ORU_R01_V24"].encode())).value("MSA-1")
        assert engine.drain(120)
        rows = engine.journal.rows()
    assert codes == expected and resent == "AA"
    assert "CA" in codes and "-" in codes  # the Epic ADTs ask AL, the CDC VXU asks ER
    states = {r["control_id"]: r["state"] for r in rows if r["state"] != "duplicate"}
    errors = [(r["control_id"], r["error"]) for r in rows if r["state"] == "error"]
    assert not errors
    assert set(states.values()) == {"processed"} and len(states) == len(order)
    assert [r["state"] for r in rows].count("duplicate") == 1
    # The A40 merge went through the engine's store sink: the prior patient links forward.
    (survivor,) = search(client, "Patient", identifier="urn:id:UHOSP|E4004")
    (prior,) = search(client, "Patient", identifier="urn:id:UHOSP|E2002")
    assert prior["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
    ]
    # Every message left one marker Provenance, written once (version 1); the A40 merge
    # moved the A11's marker target (the prior patient) to the survivor: version 2.
    for row in rows:
        if row["state"] == "processed":
            mid = marker_id(row["channel"], row["sender"], row["control_id"])
            stored = env.repository.read("Provenance", mid)
            moved = row["message_type"] == "ADT^A11"
            assert stored.version == (2 if moved else 1), row["control_id"]
            if moved:
                assert f"Patient/{survivor['id']}".encode() in (stored.data or b"")
    oru_row = next(r for r in rows if r["message_type"] == "ORU^R01")
    assert any(
        loc.startswith("Observation/") for loc in orjson.loads(oru_row["result"])["resources"]
    )


def test_replay_after_a_store_outage(tmp_path: Path, env: Env) -> None:
    """Messages parked while the store refused them go in with ``cmio hl7 replay``."""
    down = FakeStore()
    down.fail = lambda bundle: 503
    config = channel(tmp_path, retry={"max_attempts": 2, "initial_delay": 0.01})
    engine = Engine([config], down, supported_types=frozenset(SUPPORTED))
    with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port) as mllp:
        for i in range(3):
            assert parse(mllp.send(oru(f"RP{i}", f"RPM{i}"))).value("MSA-1") == "AA"
        assert engine.drain(30)
    parked = Journal(config.journal).rows(states=["error"])
    assert len(parked) == 3 and "gave up after 2 attempts" in parked[0]["error"]
    yaml_path = tmp_path / "ch.yaml"
    yaml_path.write_text(f"name: test\njournal: {config.journal}\n", encoding="utf-8")
    store_url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = CliRunner().invoke(
        app, ["hl7", "replay", "--channel", str(yaml_path), "--database", store_url]
    )
    assert result.exit_code == 0, result.output
    assert "processed 3" in result.output
    assert {r["state"] for r in Journal(config.journal).rows()} == {"processed"}
    again = CliRunner().invoke(
        app, ["hl7", "replay", "--channel", str(yaml_path), "--database", store_url]
    )
    assert again.exit_code == 0 and "Nothing to replay" in again.output


def test_merge_links_survive_a_later_adt(tmp_path: Path, env: Env) -> None:
    """An ADT for the surviving patient after an A40 keeps the links the merge set."""
    from cmio.interfaces.hl7v2.mapping import store_patient_links

    router = FhirRouter(env)
    client = RouterClient(router)
    engine = Engine(
        [channel(tmp_path)],
        RouterSink(router),
        supported_types=frozenset(SUPPORTED),
        patient_links=store_patient_links(client),
    )
    later = samples.ALL["ADT_A31"].replace("EP1000009", "EP1000009-LATER")
    with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port, timeout=30) as mllp:
        for name in ("ADT_A28", "ADT_A11", "ADT_A40"):
            assert parse(mllp.send(samples.ALL[name].encode())).value("MSA-1") == "AA"
        assert engine.drain(60)
        assert parse(mllp.send(later.encode())).value("MSA-1") == "AA"
        assert engine.drain(60)
        errors = [r["error"] for r in engine.journal.rows() if r["state"] == "error"]
    assert not errors
    (survivor,) = search(client, "Patient", identifier="urn:id:UHOSP|E4004")
    (prior,) = search(client, "Patient", identifier="urn:id:UHOSP|E2002")
    assert {"other": {"reference": f"Patient/{prior['id']}"}, "type": "replaces"} in survivor[
        "link"
    ]
    assert survivor["address"][0]["line"] == ["7 Birch Ln"]  # the A31's update applied too
