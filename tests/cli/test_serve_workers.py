"""``cmio serve --workers 2`` on PostgreSQL: both processes serve, and each sees the other's writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cmio.testing.pg import with_search_path
from cmio.testing.server import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # two server processes start (~15 s)


@pytest.fixture()
def served(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    schema = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url, port = with_search_path(postgres_url, schema), free_port()
    env = {
        **os.environ,
        "CMIO_TERMINOLOGY_DB": str(tmp_path / "none.db"),
        "CMIO_HL7_JOURNAL": str(tmp_path / "journal.db"),
        "CMIO_EXPORT_DIR": str(tmp_path / "exports"),
        "CMIO_AUDIT": "off",
    }
    cmd = [sys.executable, "-m", "cmio.cli.main", "serve", "--no-auth", "--workers", "2"]
    cmd += ["--port", str(port), "--database", url, "--validation", "off"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(origin + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "cmio serve --workers 2 did not come up"
            time.sleep(0.2)
        yield origin
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _pid(http: httpx.Client) -> int:
    """The process answering on this (kept-alive) connection, from its /metrics."""
    match = re.search(r'pid="(\d+)"', http.get("/metrics").text)
    assert match
    return int(match.group(1))


def test_two_workers_share_one_store(served: str) -> None:
    workers: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 20
    while len(workers) < 2 and time.monotonic() < deadline:
        http = httpx.Client(base_url=served, timeout=10)  # a new connection: any worker
        pid = _pid(http)
        if pid in workers:
            http.close()
        else:
            workers[pid] = http
    try:
        assert len(workers) == 2, "only one worker process answered"
        (pid_a, a), (pid_b, b) = workers.items()
        assert _pid(a) == pid_a and _pid(b) == pid_b  # kept-alive connections stay put
        made = a.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
        assert made.status_code == 201
        pid = made.json()["id"]
        assert b.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"  # B reads A's write
        changed = {"resourceType": "Patient", "id": pid, "gender": "male"}
        assert b.put(f"/fhir/Patient/{pid}", json=changed).status_code == 200
        again = a.get(f"/fhir/Patient/{pid}").json()
        assert again["gender"] == "male" and again["meta"]["versionId"] == "2"
        found = b.get("/fhir/Patient", params={"_id": pid}).json()
        assert found["total"] == 1
    finally:
        for http in workers.values():
            http.close()
