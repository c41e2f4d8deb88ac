"""``cmio serve --workers N``: one SO_REUSEPORT socket per worker (``cmio.cli.serve_workers``)."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cmio.testing.server import free_port

pytestmark = pytest.mark.slow  # worker processes start (~10 s)

# run_workers with a short start window, as `cmio serve --workers 2` runs it
SCRIPT = """
import sys
from cmio.cli.serve_workers import run_workers
run_workers({"app": "cmio.api.app:app_from_environment", "factory": True,
             "host": "127.0.0.1", "port": int(sys.argv[1]), "log_level": "warning"},
            2, grace=10, startup=float(sys.argv[2]))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CMIO_DATABASE_URL": f"sqlite:///{tmp_path / 'cmio.db'}",
        "CMIO_TERMINOLOGY_DB": str(tmp_path / "none.db"),
        "CMIO_HL7_JOURNAL": str(tmp_path / "journal.db"),
        "CMIO_EXPORT_DIR": str(tmp_path / "exports"),
        "CMIO_AUDIT": "off",
        "CMIO_AUTH": "off",
    }


def _up(origin: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(origin + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _pids(origin: str, connections: int) -> collections.Counter[int]:
    """The worker answering each of ``connections`` connections opened at once."""

    def pid(client: httpx.Client) -> int:
        with client:
            match = re.search(r'pid="(\d+)"', client.get("/metrics").text)
            assert match
            return int(match.group(1))

    clients = [httpx.Client(base_url=origin, timeout=10) for _ in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        return collections.Counter(pool.map(pid, clients))


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(port), "1"],
            env=_env(tmp_path),
            stdout=out,
            stderr=out,
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        _up(origin, proc, log)
        yield origin, proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_connections_spread_and_a_dead_worker_is_replaced(
    served: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    origin, proc, tmp_path = served
    first = _pids(origin, 16)
    assert len(first) == 2, first  # both workers take connections opened together
    # a second server on the port is refused, as with one process
    port = origin.rsplit(":", 1)[1]
    second = subprocess.run(
        [sys.executable, "-c", SCRIPT, port, "1"],
        env=_env(tmp_path / "other") | {"CMIO_DATABASE_URL": f"sqlite:///{tmp_path}/o.db"},
        capture_output=True,
        timeout=60,
    )
    assert second.returncode != 0 and b"Address already in use" in second.stderr
    time.sleep(1.5)  # past the start window
    victim = next(iter(first))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # the parent starts a new worker in its place
        pids = _pids(origin, 16)
        if victim not in pids and len(pids) == 2:
            break
        assert time.monotonic() < deadline, pids
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(origin + "/health", timeout=2)


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"CMIO_DATABASE_URL": "nosuchscheme://x"}  # the app cannot load
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(free_port()), "30"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert b"WorkerStartError" in done.stderr and b"during its start" in done.stderr
