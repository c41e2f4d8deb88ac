"""Interface health: figures from the journal, Prometheus text, ``cmio hl7 status``/``send``."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from typer.testing import CliRunner

from cmio.api.hl7 import health_routes
from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.journal import Journal, StateUpdate
from cmio.interfaces.hl7v2.engine.metrics import read_health, to_prometheus
from cmio.interfaces.hl7v2.engine.mllp import frame
from cmio.interfaces.hl7v2.engine.server import Channel
from tests.interfaces.hl7v2.engine.conftest import FakeStore, RunningEngine, adt, channel, oru


def fill(tmp_path: Path) -> Path:
    config = channel(tmp_path)
    journal = Journal(config.journal)
    journal.start()
    ch = Channel(config, journal)
    for raw in (oru("1"), oru("2"), adt("3", "M3"), oru("4", version="2.1"), oru("1")):
        ch.receive_sync(raw)
    journal.update_sync([StateUpdate(1, "processed", 1, result="{}"),
                         StateUpdate(2, "error", 1, error="mapping: bad")])  # fmt: skip
    journal.close()
    return Path(config.journal)


def test_health_figures(tmp_path: Path) -> None:
    path = fill(tmp_path)
    health = read_health(path, now=time.time() + 1)
    (c,) = health.channels
    assert c.channel == "test"
    assert c.per_minute == {"ORU^R01": 3, "ADT^A08": 1}  # duplicates are not counted again
    assert c.received_total == {"processed": 1, "error": 1, "received": 1, "rejected": 1,
                                "duplicate": 1}  # fmt: skip
    assert c.queue_depth == 1 and c.error_queue == 1
    assert c.error_rate == 2 / 5
    assert 0.9 <= c.lag_seconds < 60
    assert c.latency_p95_seconds is not None and c.last_message_at is not None
    assert read_health(tmp_path / "missing.db").channels == []


def test_prometheus_endpoint(tmp_path: Path) -> None:
    path = fill(tmp_path)
    text = to_prometheus(read_health(path))
    sample = re.compile(r'^[a-z_0-9]+\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\} -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert 'cmio_hl7_queue_depth{channel="test"} 1.0' in text
    assert 'cmio_hl7_messages_last_minute{channel="test",type="ORU^R01"} 3.0' in text

    async def fetch() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=Starlette(routes=health_routes(path)))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
            return await web.get("/metrics"), await web.get("/interfaces/health")

    metrics, health = asyncio.run(fetch())
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "cmio_hl7_error_queue" in metrics.text
    assert health.json()["channels"][0]["queue_depth"] == 1


def test_status_command(tmp_path: Path) -> None:
    path = fill(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["hl7", "status", "--journal", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["channels"][0]["error_queue"] == 1
    table = runner.invoke(app, ["hl7", "status", "--journal", str(path)])
    assert table.exit_code == 0 and "test" in table.output and "ORU^R01" in table.output
    empty = runner.invoke(app, ["hl7", "status", "--journal", str(tmp_path / "none.db")])
    assert empty.exit_code == 0 and "No messages" in empty.output


def test_send_command(tmp_path: Path, running: RunningEngine, store: FakeStore) -> None:
    plain = tmp_path / "feed.hl7"
    plain.write_bytes((oru("S1") + oru("S2")).replace(b"\r", b"\r\n"))
    framed = tmp_path / "feed.mllp"
    framed.write_bytes(frame(oru("S3")) + frame(oru("S4", version="2.1")))
    result = CliRunner().invoke(
        app, ["hl7", "send", str(plain), str(framed), "--port", str(running.port)]
    )
    assert result.exit_code == 1  # one message was refused
    assert "AA 3, AR 1" in result.output and "S4: AR" in result.output
    assert running.engine.drain(10)
    assert sorted(store.applied) == ["S1", "S2", "S3"]


def test_send_over_parallel_connections_keeps_patient_order(
    tmp_path: Path, running: RunningEngine, store: FakeStore
) -> None:
    feed = tmp_path / "feed.hl7"
    sent = [(f"PC{i:02d}", f"M{i % 5}") for i in range(30)]
    feed.write_bytes(b"".join(oru(c, m) for c, m in sent))
    result = CliRunner().invoke(
        app, ["hl7", "send", str(feed), "--port", str(running.port), "--connections", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "AA 30" in result.output
    assert running.engine.drain(20)
    assert sorted(store.applied) == sorted(c for c, _ in sent)
    for mrn in {m for _, m in sent}:
        mine = [c for c, m in sent if m == mrn]
        assert [c for c in store.applied if c in mine] == mine
