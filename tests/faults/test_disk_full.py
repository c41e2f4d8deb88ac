"""The disk fills up under ``cmio serve`` on SQLite, then space comes back.

The database lives on a small tmpfs (``mount -t tmpfs -o size=...``: we run as root in
CI; elsewhere the test is skipped with that reason). Writers stream creates until
the file system is full: the failing requests get ``507`` (or ``503`` when it is the
audit record that cannot be written) with an OperationOutcome, never a hang or a
500; a read answers or, when its audit record cannot be written, is refused with 503
(no unaudited answer); ``PRAGMA integrity_check`` stays ``ok``; after
``mount -o remount,size=...`` writes succeed again, nothing acknowledged is lost and
``cmio doctor`` passes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cmio.indexing import SearchIndexer
from cmio.store import open_repository

from .conftest import JSON, Server, assert_doctor_ok


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted at ``tmp_path/disk``."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def create(http: httpx.Client, acked: dict[str, str], errors: list[httpx.Response]) -> bool:
    value = uuid.uuid4().hex
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:fault:disk", "value": value}],
        "text": {"status": "generated", "div": f"<div>{value * 60}</div>"},  # ~2 kB
    }
    r = http.post("/Patient", content=orjson.dumps(body), headers=JSON)
    if r.status_code == 201:
        acked[value] = r.json()["id"]
        return True
    errors.append(r)
    return False


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        return "; ".join(str(r[0]) for r in c.execute("PRAGMA integrity_check"))


@pytest.mark.slow
def test_disk_full_then_space_returns(
    small_disk: Path, tmp_path: Path, indexer: SearchIndexer
) -> None:
    db = small_disk / "store.db"
    url = f"sqlite:///{db}"
    server = Server(url, tmp_path).start()
    acked: dict[str, str] = {}
    errors: list[httpx.Response] = []
    try:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            failed_in_a_row = 0
            for _ in range(3000):
                failed_in_a_row = 0 if create(http, acked, errors) else failed_in_a_row + 1
                if failed_in_a_row >= 5:
                    break
            assert failed_in_a_row >= 5, "the disk never filled up"
            assert len(acked) >= 10
            for r in errors:
                assert r.status_code in (503, 507), r.text
                outcome = r.json()
                assert outcome["resourceType"] == "OperationOutcome"
            assert any(r.status_code == 507 for r in errors)
            assert any("full" in r.text for r in errors)
            assert integrity(db) == "ok"
            # A read answers, or (its audit record cannot be written) is refused cleanly.
            value, rid = next(iter(acked.items()))
            read = http.get(f"/Patient/{rid}")
            if read.status_code == 200:
                assert value in read.text
            else:
                assert read.status_code == 503 and "audit" in read.json()["issue"][0]["diagnostics"]

            grow(small_disk, "64m")
            recovered = sum(create(http, acked, errors) for _ in range(20))
            assert recovered == 20, [r.text for r in errors[-3:]]
    finally:
        server.stop()
    assert integrity(db) == "ok"
    assert_doctor_ok(url, indexer)
    repo = open_repository(url, indexer=indexer)
    try:
        stored = [orjson.loads(r.data)["identifier"][0]["value"] for r in repo.iter_current()]
    finally:
        repo.close()
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored)
