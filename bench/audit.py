"""Cost of the audit trail: reads/s and creates/s with audit off and on, side by side.

Drives the ASGI app in process (no sockets: the server's own cost) with ``--inflight``
requests outstanding, on a fresh store per run: SQLite (group-commit writer for
writes, reads inline on the event loop waiting for the audit writer) or PostgreSQL
(``--postgres``: a throwaway server, requests on the thread pool). Runs alternate
off/on so that machine noise hits both; medians are reported with the on/off ratio.
Also measures the lazy AuditEvent index (records copied per second), the cost eager
indexing would add to every audited request.

    python bench/audit.py [--reads 4000] [--creates 1500] [--runs 3] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model, load_model


async def _call(app: CmioApp, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/fhir+json"), (b"host", b"bench")],
        "client": ("10.0.0.1", 5000),
        "server": ("bench", 80),
        "scheme": "http",
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _drive(app: CmioApp, jobs: list[tuple[str, str, bytes]], inflight: int) -> float:
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            method, path, body = queue.pop()
            status, out = await _call(app, method, path, body)
            if status >= 300:
                raise RuntimeError(f"{method} {path}: {status} {out[:200]!r}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return time.perf_counter() - start


def _observation(pid: str, n: int) -> bytes:
    return json.dumps(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
        }
    ).encode()


def one_run(url: str, model: Model, audit: bool, args: argparse.Namespace) -> dict[str, float]:
    settings = Settings(validation="off", terminology_db=None, audit=audit)
    app = CmioApp(build_env(url, settings, model))
    try:
        loop = asyncio.new_event_loop()
        try:
            pids = []
            for _ in range(20):
                _status, body = loop.run_until_complete(
                    _call(app, "POST", "/fhir/Patient", b'{"resourceType":"Patient"}')
                )
                pids.append(json.loads(body)["id"])
            creates = [
                ("POST", "/fhir/Observation", _observation(pids[n % 20], n))
                for n in range(args.creates)
            ]
            create_s = loop.run_until_complete(_drive(app, creates, args.inflight))
            reads = [("GET", f"/fhir/Patient/{pids[n % 20]}", b"") for n in range(args.reads)]
            read_s = loop.run_until_complete(_drive(app, reads, args.inflight))
        finally:
            loop.close()
        out = {"creates_per_s": args.creates / create_s, "reads_per_s": args.reads / read_s}
        auditor = app.env.auditor
        if auditor is not None:
            out["batch"] = auditor.writer.records / max(1, auditor.writer.batches)
            auditor.writer.close()
            start = time.perf_counter()
            copied = auditor.index.sync()
            out["index_per_s"] = copied / (time.perf_counter() - start)
            out["records"] = copied
            out["chain_ok"] = float(auditor.log.verify().ok)
        return out
    finally:
        app.close()


@contextlib.contextmanager
def _stores(postgres: bool) -> Iterator[Any]:
    if not postgres:
        with tempfile.TemporaryDirectory() as tmp:
            yield lambda: f"sqlite:///{tmp}/{uuid.uuid4().hex}.db"
        return
    import psycopg

    from cmio.testing.pg import running_postgres, with_search_path

    with running_postgres() as server:

        def fresh() -> str:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            return with_search_path(server, schema)

        yield fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--creates", type=int, default=1500)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    model = load_model()
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with _stores(args.postgres) as fresh:
        for _ in range(args.runs):
            for audit in (False, True):
                results[audit].append(one_run(fresh(), model, audit, args))
    backend = "postgres" if args.postgres else "sqlite"
    print(f"backend {backend}, {args.runs} runs each, {args.inflight} requests in flight")
    for key in ("reads_per_s", "creates_per_s"):
        off = statistics.median(r[key] for r in results[False])
        on = statistics.median(r[key] for r in results[True])
        print(f"{key:14s} audit off {off:9.0f}   audit on {on:9.0f}   on/off {on / off:5.2f}")
    on_runs = results[True]
    index = statistics.median(r["index_per_s"] for r in on_runs)
    print(f"AuditEvent index (lazy copy): {index:.0f} records/s over {on_runs[0]['records']:.0f}")
    batch = statistics.median(r["batch"] for r in on_runs)
    print(f"audit records per group commit (reads and failures): {batch:.1f}")
    print(f"chains verified: {all(r['chain_ok'] for r in on_runs)}")


if __name__ == "__main__":
    main()
