"""Latency of one read with and without the audit trail, one request at a time.

In process (``FhirRouter.handle``, no HTTP), one Patient read by id ``--n`` times per
round, audit off and on alternating for ``--rounds`` rounds, on SQLite or a throwaway
PostgreSQL; prints the median and p95 per mode. Serial reads show the wait for the
audit record's commit that concurrent reads share (see "Audit trail" in
docs/benchmarks.md for the concurrent rates).

    python bench/audit_latency.py [--backend sqlite|postgres] [--n 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cmio.api.app import build_env  # noqa: E402
from cmio.api.env import Settings  # noqa: E402
from cmio.api.http import FhirRequest  # noqa: E402
from cmio.api.router import FhirRouter  # noqa: E402


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp(prefix='cmio-audit-')) / 'cmio.db'}"
        return
    from cmio.testing.pg import running_postgres

    with running_postgres() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    with database(args.backend) as url:
        for _ in range(args.rounds):
            for audit in (False, True):
                env = build_env(url, Settings(validation="off", terminology_db=None, audit=audit))
                router = FhirRouter(env)
                with env.repository.transaction() as tx:
                    if tx.current("Patient", "p1") is None:
                        tx.create({"resourceType": "Patient"}, id="p1")
                for _ in range(args.n):
                    request = FhirRequest(
                        method="GET",
                        path="Patient/p1",
                        query=[],
                        headers={},
                        base_url="http://b/fhir",
                    )
                    started = time.perf_counter()
                    response = router.handle(request)
                    times[audit].append(time.perf_counter() - started)
                    assert response.status == 200, response.body
                if env.auditor is not None:
                    env.auditor.close()
                env.repository.close()
    print(f"\n{args.backend}, {args.n} serial reads x {args.rounds} rounds per mode\n")
    print("| audit | median ms | p95 ms |")
    print("|---|---:|---:|")
    for audit, values in times.items():
        values.sort()
        p95 = values[int(len(values) * 0.95)]
        print(
            f"| {'on' if audit else 'off'} | {statistics.median(values) * 1000:.2f} | {p95 * 1000:.2f} |"
        )


if __name__ == "__main__":
    main()
