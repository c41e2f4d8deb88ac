"""CPU per search request through the whole ASGI app, in process (no sockets, no wrk).

Builds the server's application on a store (``cmio.api.app.create_app``, settings from
the environment as ``cmio serve`` does; ``CMIO_AUDIT=off`` leaves the audit trail out),
then sends the issue's typical searches (``bench/search.py``'s queries, values picked
from the data) round-robin, ``--concurrency`` at a time, and prints requests/s and CPU
µs per request of this process. ``--profile FILE`` writes a cProfile. Run it against
another checkout with ``PYTHONPATH=<checkout>/src``; it writes to the store only the
audit trail (use a copy).

    python bench/search_asgi.py --db /tmp/s7/store1m.db --count 2000 [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cmio.api.app import create_app
from cmio.api.env import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.store.sqlite import SqliteRepository
from search import _pick, queries


def paths(db: Path) -> list[str]:
    """The typical searches as request paths (``_include`` as a query parameter)."""
    repo = SqliteRepository(db, indexer=SearchIndexer(load_model()))
    try:
        picked = queries(_pick(repo))
    finally:
        repo.close()
    out = []
    for _, rtype, params, incs in picked:
        query = list(params) + [("_include", f"{i.source}:{i.params[0]}") for i in incs]
        out.append(f"/fhir/{rtype}?{urlencode(query)}")
    return out


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    os.environ.setdefault("CMIO_AUTH", "off")  # loopback benchmark, as --no-auth
    targets = paths(Path(args.db))
    app = create_app(f"sqlite:///{args.db}", Settings.from_environment(os.environ))

    async def call(path: str) -> tuple[int, int]:
        route, _, query = path.partition("?")
        scope = {
            "type": "http",
            "method": "GET",
            "path": route,
            "query_string": query.encode(),
            "headers": [(b"host", b"127.0.0.1:8080"), (b"accept", b"application/fhir+json")],
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
            return {"type": "http.request", "body": b"", "more_body": False}

        out = {"status": 0, "bytes": 0}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            else:
                out["bytes"] += len(message.get("body", b""))

        await app(scope, receive, send)
        return out["status"], out["bytes"]

    async def run() -> None:
        for path in targets:  # warm: compiled shapes, statement cache, pages
            status, _ = await call(path)
            assert status == 200, (status, path)
        profiler = cProfile.Profile() if args.profile else None
        n, c = args.count, args.concurrency
        start, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        size = 0
        for i in range(0, n, c):
            done = await asyncio.gather(
                *(call(targets[(i + j) % len(targets)]) for j in range(min(c, n - i)))
            )
            assert all(s == 200 for s, _ in done), done
            size += sum(b for _, b in done)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        audit = "on" if app.env.auditor is not None else "off"
        print(
            f"search (audit {audit}, {len(targets)} queries): {n / wall:,.0f}/s,"
            f" {used / n * 1e6:,.0f} µs CPU per request, {size / n:,.0f} bytes per response"
        )

    try:
        asyncio.run(run())
    finally:
        app.close()


if __name__ == "__main__":
    main()
