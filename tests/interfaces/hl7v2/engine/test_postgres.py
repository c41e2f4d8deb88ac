"""The engine into a PostgreSQL store: a batch in one commit, each message a savepoint.

An ADT^A40's Bundle, its merge and its marker commit together or not at all.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import cmio.interfaces.hl7v2.mapping as v2fhir
from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import (
    SinkItem,
    marker_id,
    marker_resource,
    with_marker,
)
from cmio.interfaces.hl7v2.engine.mllp import MllpClient
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from cmio.interfaces.hl7v2.parser import parse
from cmio.store.base import NotFoundError
from cmio.store.postgres import PostgresRepository
from cmio.testing.pg import with_search_path
from tests.interfaces.hl7v2.engine.conftest import RunningEngine, channel, oru
from tests.interfaces.hl7v2.mapping import samples


@pytest.mark.postgres
def test_engine_into_postgres(tmp_path: Path, postgres_url: str) -> None:
    schema = f"hl7_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env = build_env(with_search_path(postgres_url, schema), Settings(terminology_db=None))
    try:
        router = FhirRouter(env)
        engine = Engine(
            [channel(tmp_path)], RouterSink(router), supported_types=frozenset(SUPPORTED)
        )
        sent = [samples.ADT_A28, samples.ADT_A31, samples.ADT_A11, samples.ADT_A40]
        with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port, timeout=30) as c:
            codes = [parse(c.send(m.encode())).value("MSA-1") for m in sent]
            codes += [parse(c.send(oru(f"PG{i}", "PGM1"))).value("MSA-1") for i in range(3)]
            codes.append(parse(c.send(oru("PG0", "PGM1"))).value("MSA-1"))  # duplicate
            assert engine.drain(60)
            rows = engine.journal.rows()
        assert codes == ["AA"] * 8
        assert [r["state"] for r in rows].count("processed") == 7
        assert not [r for r in rows if r["state"] == "error"]
        client = RouterClient(router)
        status, body = client.request("GET", "Patient", [("identifier", "urn:id:UHOSP|E2002")],
                                      None)  # fmt: skip
        assert status == 200
        (prior,) = [e["resource"] for e in body["entry"]]
        assert prior["link"][0]["type"] == "replaced-by"
        for i in range(3):
            marker = env.repository.read("Provenance", marker_id("test", "LAB|HOSP", f"PG{i}"))
            assert marker.version == 1
    finally:
        env.repository.close()


@pytest.fixture(scope="module")
def pg_env(postgres_url: str) -> Iterator[Env]:
    schema = f"hl7_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env = build_env(with_search_path(postgres_url, schema), Settings(terminology_db=None))
    try:
        yield env
    finally:
        env.repository.close()


def item_for(raw: str) -> SinkItem:
    """The sink item the processor builds for a message (marker included)."""
    message = parse(raw.encode())
    mapped = v2fhir.map_message(message, v2fhir.MappingOptions())
    marker = marker_resource(mapped.bundle, marker_id("test", "S", message.control_id),
                             channel="test", sender="S", control_id=message.control_id,
                             recorded="2025-03-12T09:00:00Z")  # fmt: skip
    if mapped.merge is None:
        return SinkItem(with_marker(mapped.bundle, marker))
    return SinkItem(mapped.bundle, mapped.merge, marker)


def snapshot(env: Env) -> dict[str, Any]:
    """Every Patient's version and links, and the markers present."""
    client = RouterClient(FhirRouter(env))
    status, body = client.request("GET", "Patient", [], None)
    assert status == 200
    patients = {e["resource"]["id"]: (e["resource"]["meta"]["versionId"],
                                      e["resource"].get("link")) for e in body["entry"]}  # fmt: skip
    status, counted = client.request("GET", "Provenance", [("_summary", "count")], None)
    assert status == 200
    return {"patients": patients, "provenances": counted["total"]}


class Injected(RuntimeError):
    """The fault."""


@pytest.mark.postgres
def test_a40_bundle_merge_and_marker_commit_together(
    pg_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RouterSink(FhirRouter(pg_env))
    setup = [item_for(m) for m in (samples.ADT_A28, samples.ADT_A31, samples.ADT_A11)]
    assert [o.status for o in sink.apply(setup)] == [200, 200, 200]
    before = snapshot(pg_env)
    a40 = item_for(samples.ADT_A40)
    assert a40.merge is not None and a40.marker is not None
    real_merge = v2fhir.apply_merge
    for where in ("before-merge", "before-marker"):

        def faulty(client: Any, merge: Any, where: str = where) -> Any:
            if where == "before-merge":
                raise Injected("the store went away between the Bundle and the merge")
            outcome = real_merge(client, merge)  # the merge is written, the marker not yet
            raise Injected(f"the store went away after merging {outcome.prior_id}")

        monkeypatch.setattr(v2fhir, "apply_merge", faulty)
        with pytest.raises(Injected):
            sink.apply([a40])
        assert snapshot(pg_env) == before, where  # the Bundle (and merge) rolled back with it
        with pytest.raises(NotFoundError):
            pg_env.repository.read("Provenance", a40.marker["id"])
    monkeypatch.setattr(v2fhir, "apply_merge", real_merge)
    (outcome,) = sink.apply([a40])  # the retry applies all three, once
    assert outcome.status == 200, outcome.detail
    after = snapshot(pg_env)
    links = {pid: link for pid, (_, link) in after["patients"].items() if link}
    assert sorted(link[0]["type"] for link in links.values()) == ["replaced-by", "replaces"]
    assert pg_env.repository.read("Provenance", a40.marker["id"]).version == 1


@pytest.mark.postgres
def test_atomic_unit_of_work_hook(pg_env: Env) -> None:
    repo = pg_env.repository
    assert isinstance(repo, PostgresRepository)
    patient = {"resourceType": "Patient", "active": True}
    seen_elsewhere: list[bool] = []

    def other_thread() -> None:
        try:
            repo.read("Patient", "atom1")
            seen_elsewhere.append(True)
        except NotFoundError:
            seen_elsewhere.append(False)

    with repo.atomic():
        with repo.transaction() as tx:
            tx.create({**patient, "identifier": [{"system": "s", "value": "v1"}]}, id="atom1")
            assert tx.token_ids("Patient", "identifier", "s", "v1") == ["atom1"]
            assert tx.token_ids("Patient", "identifier", None, "v1") == []
        assert repo.read("Patient", "atom1").version == 1  # this thread sees its own write
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        with pytest.raises(Injected), repo.transaction() as tx:  # a savepoint rolls back alone
            tx.create({"resourceType": "Patient"}, id="atom2")
            raise Injected("inner")
        with pytest.raises(NotFoundError):
            repo.read("Patient", "atom2")
    assert seen_elsewhere == [False]  # uncommitted until the block ended
    assert repo.read("Patient", "atom1").version == 1
    with pytest.raises(Injected), repo.atomic():
        with repo.transaction() as tx:
            tx.create({"resourceType": "Patient"}, id="atom3")
        raise Injected("outer")
    with pytest.raises(NotFoundError):
        repo.read("Patient", "atom3")
