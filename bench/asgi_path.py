"""CPU cost of one FHIR interaction through the whole ASGI app, in process (no sockets).

Builds the server's application (``cmio.api.app.create_app``, settings from the
environment as ``cmio serve`` does: set ``CMIO_AUDIT=off`` to leave the audit trail
out), seeds 200 patients, then drives ``--count`` reads (one after another), creates
or updates (16 concurrent, or ``--concurrency`` when above 1, through the group-commit
writer) through the app's ASGI callable and prints requests/s and CPU µs per request of
this process (the event loop and the writer thread). With ``--profile FILE`` it writes a
cProfile of the event loop thread. Run it against another checkout with
``PYTHONPATH=<checkout>/src``.

    python bench/asgi_path.py read|create|update [--count 5000] [--profile out.prof]
    python bench/asgi_path.py read --concurrency 16   # 16 readers at once, as 16 connections

With ``--concurrency N`` reads run N at a time (each reader starts its next read when
the last one answered), so audited reads share group commits as over HTTP; the audit
writer's records per commit are printed too, and the CPU per request of each thread
(the event loop, the audit writer ``cmio-audit``, the journal's mover ``cmio-audit-move``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from typing import Any

from cmio.api.app import create_app
from cmio.api.env import Settings


def _patient(i: int, rid: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": "Bench", "given": ["W"]}],
        "birthDate": f"1980-01-0{i % 9 + 1}",
    }
    if rid is not None:
        body["id"] = rid
    return json.dumps(body).encode()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each live thread of this process, by thread name (the
    event loop is the main thread; the audit writer ``cmio-audit``, the journal's mover
    ``cmio-audit-move``)."""
    used: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            seconds = time.clock_gettime(clock)
        except (OSError, AttributeError):  # the thread ended meanwhile; or not POSIX
            continue
        name = "loop" if thread is threading.main_thread() else thread.name
        used[name] = used.get(name, 0.0) + seconds
    return used


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["read", "create", "update"])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--profile", default=None)
    parser.add_argument(
        "--concurrency", type=int, default=1, help="readers at once (read); writes: 16 if 1"
    )
    args = parser.parse_args()
    os.environ.setdefault("CMIO_AUTH", "off")  # loopback benchmark, as http_bench's --no-auth
    tmp = tempfile.mkdtemp(prefix="cmio-asgi-")
    app = create_app(f"sqlite:///{tmp}/cmio.db", Settings.from_environment(os.environ))

    async def call(method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8080"),
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8080),
            "scheme": "http",
            "http_version": "1.1",
            "root_path": "",
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        out: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["body"] = message.get("body", b"")

        await app(scope, receive, send)
        return out

    async def run() -> None:
        ids: list[str] = []
        for i in range(0, 200, 20):
            done = await asyncio.gather(
                *(call("POST", "/fhir/Patient", _patient(i + j)) for j in range(20))
            )
            ids += [json.loads(r["body"])["id"] for r in done]
        profiler = cProfile.Profile() if args.profile else None
        n = args.count
        start, cpu = time.perf_counter(), time.process_time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        threads = _thread_cpu()
        if profiler is not None:
            profiler.enable()
        auditor = app.env.auditor

        def counts() -> tuple[int, int]:  # (durable writes, records): journal or writer
            if auditor is None:
                return 0, 0
            journal = getattr(auditor, "journal", None)
            if journal is not None:
                return journal.groups, journal.appended
            return auditor.writer.batches, auditor.writer.records

        commits = counts()
        if args.mode == "read":
            lanes = max(1, args.concurrency)

            async def reader(lane: int) -> None:
                for i in range(lane, n, lanes):
                    got = await call("GET", "/fhir/Patient/" + ids[i % len(ids)])
                    assert got["status"] == 200, got

            await asyncio.gather(*(reader(lane) for lane in range(lanes)))
        else:
            width = args.concurrency if args.concurrency > 1 else 16
            for i in range(0, n, width):
                if args.mode == "create":
                    batch = [call("POST", "/fhir/Patient", _patient(i + j)) for j in range(width)]
                else:
                    rids = [ids[(i + j) % len(ids)] for j in range(width)]
                    batch = [
                        call("PUT", f"/fhir/Patient/{rid}", _patient(i + j, rid))
                        for j, rid in enumerate(rids)
                    ]
                done = await asyncio.gather(*batch)
                assert all(r["status"] in (200, 201) for r in done), done[0]
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        by_thread = {k: v - threads.get(k, 0.0) for k, v in _thread_cpu().items()}
        after = resource.getrusage(resource.RUSAGE_SELF)
        system = (after.ru_stime - usage.ru_stime) / n * 1e6
        switches = (after.ru_nvcsw - usage.ru_nvcsw + after.ru_nivcsw - usage.ru_nivcsw) / n
        audit = "on" if auditor is not None else "off"
        per_commit = ""
        if auditor is not None:
            batches, records = (now - then for now, then in zip(counts(), commits, strict=True))
            per_commit = f", {records / max(batches, 1):.1f} audit records per commit"
        print(
            f"{args.mode} (audit {audit}, {args.concurrency} at once): {n / wall:,.0f}/s, "
            f"{used / n * 1e6:.1f} µs CPU per request ({system:.1f} of it in the kernel,"
            f" {switches:.1f} context switches){per_commit}"
        )
        shares = ", ".join(f"{k} {v / n * 1e6:.1f}" for k, v in by_thread.items() if v / n >= 5e-8)
        print(f"  µs CPU per request by thread: {shares}")

    try:
        asyncio.run(run())
    finally:
        app.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
