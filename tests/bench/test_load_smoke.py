"""Smoke test of the load harness (``bench/load``): 5 s, 4 clients, in-process server."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.testing.server import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load.driver import count_written, lost_writes, run_load  # noqa: E402
from bench.load.run import report  # noqa: E402
from bench.load.workload import MIX, seed_bundles  # noqa: E402


@pytest.fixture
def engine_port(tmp_path: Path) -> Iterator[int]:
    """An HL7 engine (MLLP, journal, store) on a thread, writing to the test's store."""
    from cmio.api.hl7 import RouterSink
    from cmio.api.router import FhirRouter
    from cmio.interfaces.hl7v2.engine.channels import parse_channel
    from cmio.interfaces.hl7v2.engine.runtime import Engine
    from cmio.interfaces.hl7v2.mapping import SUPPORTED

    env = build_env(f"sqlite:///{tmp_path / 'store.db'}", _settings(tmp_path))
    config = parse_channel({"name": "smoke", "journal": str(tmp_path / "journal.db")})
    engine = Engine([config], RouterSink(FhirRouter(env)), supported_types=frozenset(SUPPORTED))
    engine.start()
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(engine.run(stop, ports={"smoke": port}, ready=lambda _: ready.set()),),
        daemon=True,
    )
    thread.start()
    assert ready.wait(20), "the HL7 engine did not start"
    yield port
    loop.call_soon_threadsafe(stop.set)
    thread.join(20)
    loop.close()
    engine.close()
    env.repository.close()


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        validation="off",
        terminology_db=None,
        hl7_journal=str(tmp_path / "journal.db"),
        export_dir=str(tmp_path / "exports"),
    )


def test_load_smoke(tmp_path: Path, engine_port: int) -> None:
    """Every interaction of the mix runs, with the HL7 feed and the dashboard, without errors."""
    app = CmioApp(build_env(f"sqlite:///{tmp_path / 'store.db'}", _settings(tmp_path)))
    seed = seed_bundles(30, random.Random(7))
    entries: list[dict[str, Any]] = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in seed.patients
    ]
    with ServerThread(app, close_app=True) as server:
        root = server.base.removesuffix("/fhir")
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        assert httpx.post(server.base, json=bundle, timeout=30).status_code == 200
        before = count_written(root)
        stats = asyncio.run(
            run_load(root, seed, clients=4, duration=5, hl7_port=engine_port, hl7_rate=10)
        )
        after = count_written(root)
    text = report(stats, title="smoke")
    assert stats.total_errors() == 0, text
    summary = stats.summary()
    for name in (*MIX, "dashboard", "interfaces-health", "hl7-mllp"):
        assert summary[name]["count"] > 0, f"{name} never ran:\n{text}"
        assert 0 < summary[name]["p50"] <= summary[name]["p99"]
    assert summary["hl7-mllp"]["count"] >= 20  # 10/s for 5 s, paced
    written = summary["create"]["count"] + 3 * summary["transaction"]["count"]
    assert after["vital-sign Observations"] - before["vital-sign Observations"] == written
    assert after["admitted Patients"] == summary["transaction"]["count"]
    assert lost_writes(before, after, stats) == []  # every acknowledged write stored, once
    stats.latencies["create"].append(0.001)  # one more acknowledged create than stored
    assert lost_writes(before, after, stats) == [
        f"vital-sign Observations: {written} stored, {written + 1} acknowledged"
    ]
    assert "| read |" in text and "**reads + searches**" in text
