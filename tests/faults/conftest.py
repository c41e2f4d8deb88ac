"""Fault-injection helpers: real server and CLI processes, killed and restarted.

``CMIO_FAULT_LOOPS`` sets how many SIGKILL rounds each kind of write gets (default 3).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from cmio.admin.doctor import DoctorReport, diagnose
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.testing.server import free_port

LOOPS = max(1, int(os.environ.get("CMIO_FAULT_LOOPS", "3")))
JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


@pytest.fixture(scope="session")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def cli(args: Sequence[str], cwd: Path, **kw: object) -> subprocess.Popen[bytes]:
    """``python -m cmio ARGS`` as a child process (output discarded unless ``stderr`` given)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cmio", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=kw.pop("stderr", subprocess.DEVNULL),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


class Server:
    """``cmio serve --no-auth`` on a loopback port, in ``cwd`` (exports land under it)."""

    def __init__(self, url: str, cwd: Path, port: int | None = None) -> None:
        self.url, self.cwd = url, cwd
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> Server:
        self.proc = cli(
            ["serve", "--no-auth", "--port", str(self.port), "--database", self.url], self.cwd
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"cmio serve did not come up on {self.url}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc = None


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child process and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def assert_doctor_ok(url: str, indexer: SearchIndexer) -> DoctorReport:
    """``cmio doctor --full``: schema, integrity, history, current rows, every resource's
    index rows, audit chain."""
    report = diagnose(url, indexer, full=True)
    assert report.ok, [f"{f.check} {f.subject}: {f.message}" for f in report.findings]
    return report
