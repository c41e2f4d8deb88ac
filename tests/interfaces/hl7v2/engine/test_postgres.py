"""The engine into a PostgreSQL store (each message its own transaction; merge after it)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.hl7 import RouterClient, RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import marker_id
from cmio.interfaces.hl7v2.engine.mllp import MllpClient
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.mapping import SUPPORTED
from cmio.interfaces.hl7v2.parser import parse
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
