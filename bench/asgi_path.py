"""CPU cost of one FHIR interaction through the whole ASGI app, in process (no sockets).

Builds the server's application (``cmio.api.app.create_app``, settings from the
environment as ``cmio serve`` does: set ``CMIO_AUDIT=off`` to leave the audit trail
out), seeds 200 patients, then drives ``--count`` reads (one after another), creates
or updates (16 concurrent, through the group-commit writer) through the app's ASGI
callable and prints requests/s and CPU µs per request of this process (the event loop
and the writer thread). With ``--profile FILE`` it writes a cProfile of the event loop
thread. Run it against another checkout with ``PYTHONPATH=<checkout>/src``.

    python bench/asgi_path.py read|create|update [--count 5000] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import tempfile
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


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["read", "create", "update"])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--profile", default=None)
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
        if profiler is not None:
            profiler.enable()
        if args.mode == "read":
            for i in range(n):
                got = await call("GET", "/fhir/Patient/" + ids[i % len(ids)])
                assert got["status"] == 200, got
        else:
            for i in range(0, n, 16):
                if args.mode == "create":
                    batch = [call("POST", "/fhir/Patient", _patient(i + j)) for j in range(16)]
                else:
                    rids = [ids[(i + j) % len(ids)] for j in range(16)]
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
        audit = "on" if app.env.auditor is not None else "off"
        print(
            f"{args.mode} (audit {audit}): {n / wall:,.0f}/s, "
            f"{used / n * 1e6:.1f} µs CPU per request"
        )

    try:
        asyncio.run(run())
    finally:
        app.close()


if __name__ == "__main__":
    main()
