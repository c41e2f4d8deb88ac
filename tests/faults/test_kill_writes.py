"""SIGKILL of ``cmio serve`` during single creates, updates, transaction Bundles and a
Bulk Data ``$export`` job, all at once (one server start per round keeps this quick).

After each kill: ``cmio doctor --full`` is clean, every acknowledged create is stored
exactly once, every acknowledged update's version holds what was sent, every
transaction is all or nothing (all when acknowledged), and the restarted server
serves the acknowledged resources. The export's status URL answers at once after the
restart: an error OperationOutcome (the job died with its server; its partial files
are not offered) or, had it finished, a manifest whose files hold each resource once.
A new export on the restarted server completes.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from cmio.indexing import SearchIndexer
from cmio.store import open_repository

from .conftest import JSON, LOOPS, Server, assert_doctor_ok

PREFER = {"prefer": "respond-async", "accept": "application/fhir+json"}

C_SYSTEM = "urn:fault:create"


@dataclass
class Acks:
    """What the server acknowledged (2xx received), and what was merely sent."""

    created: dict[str, str] = field(default_factory=dict)  # identifier value -> id
    updated: list[tuple[str, int, str]] = field(default_factory=list)  # id, version, family
    tx_sent: list[str] = field(default_factory=list)
    tx_acked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def creator(base: str, acks: Acks, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            value = uuid.uuid4().hex
            body = {"resourceType": "Patient", "identifier": [{"system": C_SYSTEM, "value": value}]}
            try:
                r = http.post("/Patient", content=orjson.dumps(body), headers=JSON)
            except httpx.TransportError:
                return
            if r.status_code == 201:
                with acks.lock:
                    acks.created[value] = r.json()["id"]


def updater(base: str, acks: Acks, stop: threading.Event, ids: list[str]) -> None:
    n = 0
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            rid, family = ids[n % len(ids)], f"v{uuid.uuid4().hex[:8]}"
            n += 1
            body = {"resourceType": "Patient", "id": rid, "name": [{"family": family}]}
            try:
                r = http.put(f"/Patient/{rid}", content=orjson.dumps(body), headers=JSON)
            except httpx.TransportError:
                return
            if r.status_code in (200, 201):
                with acks.lock:
                    acks.updated.append((rid, int(r.json()["meta"]["versionId"]), family))


def transactor(base: str, acks: Acks, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            system = f"urn:fault:tx:{uuid.uuid4().hex}"
            entries = [
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [{"system": system, "value": str(i)}],
                    },
                    "request": {"method": "POST", "url": "Patient"},
                }
                for i in range(3)
            ]
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            with acks.lock:
                acks.tx_sent.append(system)
            try:
                r = http.post("", content=orjson.dumps(bundle), headers=JSON)
            except httpx.TransportError:
                return
            if r.status_code == 200:
                with acks.lock:
                    acks.tx_acked.add(system)


def check_store(url: str, indexer: SearchIndexer, acks: Acks) -> None:
    """The invariants, read from the store itself while no server runs."""
    assert_doctor_ok(url, indexer)
    repo = open_repository(url, indexer=indexer)
    try:
        values: Counter[str] = Counter()
        systems: Counter[str] = Counter()
        for stored in repo.iter_current(["Patient"]):
            for ident in orjson.loads(stored.data).get("identifier", []):
                if ident["system"] == C_SYSTEM:
                    values[ident["value"]] += 1
                elif ident["system"].startswith("urn:fault:tx:"):
                    systems[ident["system"]] += 1
        assert all(n == 1 for n in values.values()), "a create was stored twice"
        lost = [v for v in acks.created if values[v] != 1]
        assert lost == [], f"{len(lost)} acknowledged creates lost"
        half = {s: systems[s] for s in acks.tx_sent if systems[s] not in (0, 3)}
        assert half == {}, f"half-applied transactions: {half}"
        assert all(systems[s] == 3 for s in acks.tx_acked), "acknowledged transaction lost"
        for rid, version, family in acks.updated:
            assert repo.read("Patient", rid).version >= version
            data = orjson.loads(repo.vread("Patient", rid, version).data)
            assert data["name"][0]["family"] == family, f"Patient/{rid}/_history/{version}"
    finally:
        repo.close()


def poll(http: httpx.Client, status_url: str, seconds: float) -> httpx.Response:
    """The first answer to an export status poll that is not ``202 in progress``."""
    deadline = time.monotonic() + seconds
    while True:
        r = http.get(status_url)
        if r.status_code != 202:
            return r
        assert time.monotonic() < deadline, f"export job still in progress: {r.headers}"
        time.sleep(0.05)


def downloaded(http: httpx.Client, r: httpx.Response) -> list[str]:
    """The ``type/id`` of every line of a completed export's files (each at most once)."""
    assert r.status_code == 200, r.text
    ids = []
    for item in r.json()["output"]:
        body = http.get(item["url"], headers={"accept": "application/fhir+ndjson"})
        assert body.status_code == 200
        ids += [f"{o['resourceType']}/{o['id']}" for o in map(orjson.loads, body.text.split())]
    assert len(ids) == len(set(ids)), "an export file repeats a resource"
    return ids


def start_export(base: str, root: Path) -> str:
    """Kick off ``$export`` and return its job id as soon as the job is running (the 202
    itself waits for the kick-off's audit record, by which time a small job is done)."""
    seen = set(root.iterdir()) if root.exists() else set()

    def kick_off() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server is killed meanwhile
            httpx.get(f"{base}/$export", headers=PREFER, timeout=30)

    threading.Thread(target=kick_off, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for folder in set(root.iterdir()) - seen if root.exists() else ():
            try:
                state = orjson.loads((folder / "job.json").read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            return str(state["id"])
        time.sleep(0.001)
    raise AssertionError("the export job did not start")


def check_export(http: httpx.Client, status_url: str) -> str:
    """The fate of an export job whose server was killed: ``error`` or ``completed``."""
    r = poll(http, status_url, 15)  # no job hangs "in progress" forever
    if r.status_code == 200:
        downloaded(http, r)
        return "completed"
    assert r.status_code == 500, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "stopped before it finished" in outcome["issue"][0]["diagnostics"]
    return "error"


@pytest.mark.slow
def test_sigkill_during_creates_updates_and_transactions(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    server = Server(url, tmp_path).start()
    acks = Acks()
    exports: list[str] = []
    rng = random.Random(13)
    try:
        for round_ in range(LOOPS):
            stop = threading.Event()
            ids = [f"u{round_}-{k}" for k in range(3)]
            threads = [
                threading.Thread(target=creator, args=(server.base, acks, stop)),
                threading.Thread(target=creator, args=(server.base, acks, stop)),
                threading.Thread(target=updater, args=(server.base, acks, stop, ids)),
                threading.Thread(target=transactor, args=(server.base, acks, stop)),
            ]
            before = len(acks.created) + len(acks.updated)
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while len(acks.created) + len(acks.updated) < before + 20:
                assert time.monotonic() < deadline, "no writes acknowledged"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 0.4))
            job = start_export(server.base, tmp_path / "cmio-data" / "exports")
            server.kill()  # mid-stream: requests are in flight in every writer and the job
            stop.set()
            for t in threads:
                t.join(30)
            check_store(url, indexer, acks)
            server.start()
            with httpx.Client(base_url=server.base, timeout=30) as http:
                for value, rid in list(acks.created.items())[-20:]:
                    r = http.get(f"/Patient/{rid}")
                    assert r.status_code == 200 and value in r.text
                exports.append(check_export(http, f"{server.base}/$export-poll-status/{job}"))
        with httpx.Client(base_url=server.base, timeout=30) as http:
            kick = http.get("/$export", headers=PREFER)
            exported = downloaded(http, poll(http, kick.headers["content-location"], 60))
        assert set(exported) >= {f"Patient/{rid}" for rid in acks.created.values()}
        assert len(acks.tx_acked) >= 1 and len(acks.updated) >= LOOPS
        assert "error" in exports, exports  # some kill caught the job mid-way
    finally:
        server.stop()
