"""``cmio demo``: generate, import, reuse, serve."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.store.base import SearchQuery
from cmio.store.sqlite import SqliteRepository
from cmio.testing.server import free_port


def _cmio(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cmio.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _count(db: Path, rtype: str) -> int:
    repo = SqliteRepository(db)
    try:
        return repo.search(SearchQuery(rtype, count=0)).total or 0
    finally:
        repo.close()


PATIENTS = 12  # every resource type (tests/synth checks the generator's populations)


@pytest.mark.slow
def test_demo_builds_once_and_serves(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    patients = str(PATIENTS)
    first = _cmio("demo", "--patients", patients, "--data-dir", str(data), "--no-serve")
    assert first.returncode == 0, first.stderr
    state = json.loads((data / "demo.json").read_text())
    assert state["patients"] == PATIENTS
    assert state["rejected"] == 0
    assert _count(data / "cmio.db", "Patient") == PATIENTS
    assert state["resources"] > PATIENTS * 20
    verify = CliRunner().invoke(
        app, ["audit", "verify", "--database", f"sqlite:///{data / 'cmio.db'}"]
    )
    assert verify.exit_code == 0, verify.output  # the seeding is in the chain
    with sqlite3.connect(data / "cmio.db") as conn:
        records = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert records >= 1
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:  # the second run reuses the data, then serves
        proc = subprocess.Popen(
            [sys.executable, "-m", "cmio.cli.main", "demo", "--patients", patients,
             "--data-dir", str(data), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "demo server did not start"
                time.sleep(0.2)
        assert httpx.get(f"{base}/fhir/Patient", timeout=5).status_code == 401  # auth is on
        users = (data / "demo-users.txt").read_text().splitlines()  # one demo user per role
        admin = next(line.split("\t") for line in users if line.startswith("demo-administrator"))
        login = httpx.post(
            f"{base}/auth/login", data={"username": admin[0], "password": admin[1]}, timeout=10
        )
        assert login.status_code == 303, login.text
        web = httpx.Client(base_url=base, cookies=login.cookies, timeout=30)
        bundle = web.get("/fhir/Patient", params={"_count": 1, "_total": "accurate"}).json()
        assert bundle["total"] == PATIENTS
        pid = bundle["entry"][0]["resource"]["id"]
        everything = web.get(f"/fhir/Patient/{pid}/$everything", params={"_count": 500}).json()
        types = {e["resource"]["resourceType"] for e in everything["entry"]}
        assert {"Patient", "Encounter", "Observation"} <= types
        assert web.get("/").status_code == 200
        web.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Reusing the demo data" in log.read_text()
