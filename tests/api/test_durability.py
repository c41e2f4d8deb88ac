"""SIGKILL during a stream of acknowledged writes loses none and half-applies no transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from tests.api.conftest import free_port
from tests.api.test_crud import JSON, patient


def start_server(database_url: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cmio.cli.main",
            "serve",
            "--no-auth",  # loopback: these tests are about durability, not authentication
            "--port",
            str(port),
            "--database",
            database_url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not come up")


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_write(database_url: str) -> None:
    port = free_port()
    proc = start_server(database_url, port)
    base = f"http://127.0.0.1:{port}/fhir"
    acknowledged: list[str] = []
    transactions: list[str] = []
    stop = threading.Event()

    def single_writer() -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            while not stop.is_set():
                try:
                    response = http.post("/Patient", json=patient(), headers=JSON)
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

    def transaction_writer() -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            while not stop.is_set():
                system = f"urn:tx:{uuid.uuid4().hex}"
                entries = [
                    {
                        "resource": patient(identifier=[{"system": system, "value": str(i)}]),
                        "request": {"method": "POST", "url": "Patient"},
                    }
                    for i in range(3)
                ]
                transactions.append(system)
                try:
                    http.post(
                        "",
                        json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                        headers=JSON,
                    )
                except httpx.TransportError:
                    return

    threads = [threading.Thread(target=single_writer) for _ in range(3)] + [
        threading.Thread(target=transaction_writer)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 50
    proc = start_server(database_url, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            missing = [
                rid for rid in acknowledged if http.get(f"/Patient/{rid}").status_code != 200
            ]
            assert missing == []
            for system in transactions:
                total = http.get(
                    "/Patient", params={"identifier": f"{system}|", "_summary": "count"}
                ).json()["total"]
                assert total in (0, 3), f"transaction {system} half-applied: {total} of 3"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
