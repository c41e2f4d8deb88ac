"""PostgreSQL crashes and restarts under a running ``cmio serve``.

A private PostgreSQL server (not the session's: this one is stopped) is restarted with
``pg_ctl restart -m immediate`` (a crash: recovery replays the WAL) while writers
stream creates. Requests in flight fail cleanly (a 5xx OperationOutcome, within the
client's timeout: nothing hangs), the connection pool reconnects (writes succeed
again after the restart), nothing acknowledged is lost and ``cmio doctor`` passes.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from cmio.indexing import SearchIndexer
from cmio.store import open_repository
from cmio.testing.pg import find_pg_bin, running_postgres

from .conftest import JSON, LOOPS, Server, assert_doctor_ok


def restart_postgres(url: str) -> None:
    """Crash and restart the server at ``url`` (same options, same data directory)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    pg_ctl = str(find_pg_bin() / "pg_ctl")  # type: ignore[operator]
    log = str(Path(row[0]).parent / "server.log")
    args = ["-D", row[0], "-m", "immediate", "-w", "-t", "60", "-l", log, "restart"]
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", pg_ctl, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_restart_mid_load(tmp_path: Path, indexer: SearchIndexer) -> None:
    with running_postgres() as url:
        server = Server(url, tmp_path).start()
        acked: dict[str, str] = {}
        failures: list[tuple[int, str]] = []
        transport: list[str] = []
        after_restart = [0]
        restarted = threading.Event()
        stop = threading.Event()
        lock = threading.Lock()

        def writer() -> None:
            with httpx.Client(base_url=server.base, timeout=30) as http:
                while not stop.is_set():
                    value = uuid.uuid4().hex
                    body = {
                        "resourceType": "Patient",
                        "identifier": [{"system": "urn:fault:pg", "value": value}],
                    }
                    try:
                        r = http.post("/Patient", content=orjson.dumps(body), headers=JSON)
                    except httpx.TransportError as exc:  # a hang ends in ReadTimeout here
                        transport.append(repr(exc))
                        continue
                    with lock:
                        if r.status_code == 201:
                            acked[value] = r.json()["id"]
                            after_restart[0] += restarted.is_set()
                        else:
                            failures.append((r.status_code, r.text))

        threads = [threading.Thread(target=writer) for _ in range(3)]
        try:
            for t in threads:
                t.start()
            for _ in range(max(1, LOOPS - 2)):  # initdb and each recovery take seconds
                restarted.clear()
                before = len(acked)
                deadline = time.monotonic() + 30
                while len(acked) < before + 20:
                    assert time.monotonic() < deadline, f"no writes acknowledged: {failures[-3:]}"
                    time.sleep(0.02)
                restart_postgres(url)
                restarted.set()
                after_restart[0] = 0
                deadline = time.monotonic() + 30
                while after_restart[0] < 10:  # the pool reconnected
                    assert time.monotonic() < deadline, f"no recovery: {failures[-3:]}"
                    time.sleep(0.02)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
            server.stop()
        assert transport == []  # every request got an answer in time
        for status, text in failures:
            assert status in (500, 503), (status, text)
            assert orjson.loads(text)["resourceType"] == "OperationOutcome"
        assert_doctor_ok(url, indexer)
        repo = open_repository(url, indexer=indexer)
        try:
            stored: dict[str, int] = {}
            for res in repo.iter_current(["Patient"]):
                value = orjson.loads(res.data)["identifier"][0]["value"]
                stored[value] = stored.get(value, 0) + 1
        finally:
            repo.close()
        assert all(n == 1 for n in stored.values())
        lost = [v for v in acked if v not in stored]
        assert lost == [], f"{len(lost)} acknowledged creates lost"
