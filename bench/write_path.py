"""Write-path cost of creates through the group-commit writer (in process, no HTTP).

Creates Synthea resources (``../shared/data/synthea-r4``) through
:class:`cmio.api.writer.GroupCommitWriter` on a fresh SQLite store, 64 requests in
flight, and reports the wall time per create and the time spent inside the writer's
critical section (its ``_commit``: the transaction holding the SQLite write lock).
Run it against another checkout with ``PYTHONPATH=<checkout>/src`` to compare.

    python bench/write_path.py [--count 3000] [--runs 3] [--busy] [--switch-interval S]

``--busy`` keeps another thread of the process doing pure-Python work meanwhile, as a
server's event loop does under load; ``--switch-interval`` has the writer lower the GIL
switch interval to S seconds (default: Python's 5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.api.writer import GroupCommitWriter

SYNTHEA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "synthea-r4"
    / "bulk-ndjson-10-patients-partial"
)


def load(count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    files = sorted(SYNTHEA.glob("[A-Z]*.000.ndjson"))
    while len(out) < count:
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines()[:200]:
                out.append(json.loads(line))
        if not files:
            raise SystemExit(f"no Synthea data under {SYNTHEA}")
    return out[:count]


def _spin(stop: threading.Event) -> None:
    """Pure-Python work holding the GIL, like an event loop parsing requests."""
    total = 0
    while not stop.is_set():
        for i in range(2000):
            total += i * i


def run(
    resources: list[dict[str, Any]], busy: bool = False, switch: float | None = None
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = build_env(f"sqlite:///{tmp}/cmio.db", Settings(), None)
        writer = (
            GroupCommitWriter(FhirRouter(env))
            if switch is None
            else GroupCommitWriter(FhirRouter(env), switch_interval=switch)
        )
        stop = threading.Event()
        spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
        if busy:
            spinner.start()
        inside = [0.0]
        commit = writer._commit

        def timed(batch: Any) -> None:
            start = time.perf_counter()
            commit(batch)
            inside[0] += time.perf_counter() - start

        writer._commit = timed  # type: ignore[method-assign]
        bodies = [(r["resourceType"], json.dumps(r).encode()) for r in resources]

        async def main() -> float:
            sem = asyncio.Semaphore(64)

            async def one(rtype: str, body: bytes) -> int:
                async with sem:
                    request = FhirRequest(
                        "POST",
                        rtype,
                        headers={
                            "content-type": "application/fhir+json",
                            "prefer": "return=minimal",
                        },
                        body=body,
                    )
                    return (await writer.submit(request)).status

            start = time.perf_counter()
            statuses = await asyncio.gather(*(one(t, b) for t, b in bodies))
            elapsed = time.perf_counter() - start
            bad = [s for s in statuses if s != 201]
            if bad:
                raise SystemExit(f"{len(bad)} creates failed: {bad[:5]}")
            return elapsed

        try:
            elapsed = asyncio.run(main())
        finally:
            stop.set()
            writer.close()
            env.repository.close()
        return elapsed, inside[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="a busy thread runs meanwhile")
    parser.add_argument("--switch-interval", type=float, default=None, help="GIL switch (s)")
    args = parser.parse_args()
    resources = load(args.count)
    walls, locks = [], []
    for _ in range(args.runs):
        wall, lock = run([dict(r) for r in resources], args.busy, args.switch_interval)
        walls.append(wall)
        locks.append(lock)
    n = len(resources)
    wall, lock = statistics.median(walls), statistics.median(locks)
    print(
        json.dumps(
            {
                "creates": n,
                "creates_per_s": round(n / wall),
                "wall_ms_per_create": round(wall / n * 1000, 3),
                "lock_ms_per_create": round(lock / n * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
