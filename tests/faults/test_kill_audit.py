"""SIGKILL of ``cmio serve`` during audited reads: no acknowledged read loses its record.

Reads' audit records are made durable in the audit journal beside the SQLite store
before the response leaves, and moved into the hash chain behind
(:mod:`cmio.security.audit.journal`). Readers send a unique ``X-Request-Id`` per read;
after the kill, the chain (read through :class:`AuditLog`, which moves what waits in a
journal first, as ``cmio audit verify`` does) holds a record for every read answered
200, exactly once, and verifies; the restarted server has deleted the dead journal and
finds the records through an AuditEvent search.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from cmio.security.audit import AuditLog
from cmio.store import open_repository

from .conftest import JSON, LOOPS, Server


def _reader(base: str, pid: str, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            rid = uuid.uuid4().hex
            try:
                r = http.get(f"/Patient/{pid}", headers={"x-request-id": rid})
            except httpx.TransportError:
                return
            if r.status_code == 200:
                acked.append(rid)


def _request_ids(url: str) -> Counter[str]:
    repo = open_repository(url)
    try:
        log = AuditLog(repo)
        assert log.verify().ok
        ids: Counter[str] = Counter()
        for row in log.rows():
            for entity in orjson.loads(row.data).get("entity", []):
                if entity.get("type", {}).get("code") == "XrequestId":
                    ids[entity["what"]["identifier"]["value"]] += 1
        return ids
    finally:
        repo.close()


@pytest.mark.slow
def test_kill_during_audited_reads_loses_no_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cmio.db'}"
    server = Server(url, tmp_path).start()
    acked: list[str] = []
    try:
        body = orjson.dumps({"resourceType": "Patient", "name": [{"family": "Kill"}]})
        pid = httpx.post(f"{server.base}/Patient", content=body, headers=JSON).json()["id"]
        for _ in range(max(1, LOOPS - 2)):  # one round by default: a start is most of the cost
            stop = threading.Event()
            readers = [
                threading.Thread(target=_reader, args=(server.base, pid, acked, stop))
                for _ in range(4)
            ]
            for thread in readers:
                thread.start()
            deadline, first = time.monotonic() + 30, len(acked)
            while len(acked) < first + 50 and time.monotonic() < deadline:
                time.sleep(0.02)  # reads are being answered: now kill in the middle
            server.kill()  # mid-stream: records of answered reads may still be in the journal
            stop.set()
            for thread in readers:
                thread.join(30)
            ids = _request_ids(url)
            assert acked, "no read was answered"
            missing = [rid for rid in acked if ids[rid] != 1]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged reads lost"
            server.start()
        search = httpx.get(
            f"{server.base}/AuditEvent", params={"_count": "1", "_summary": "count"}, headers=JSON
        )
        assert search.status_code == 200
        assert search.json()["total"] >= len(acked)
    finally:
        server.kill()
