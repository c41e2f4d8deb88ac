"""Bulk import throughput: NDJSON (generated) and the 53 Synthea Bundles, SQLite and PostgreSQL.

Each figure is the median of ``--runs`` imports into a fresh, empty store
(resources read per second of wall-clock time, validation and commit included).
PostgreSQL runs on a throwaway local server (``cmio.testing.pg.running_postgres``).

Usage::

    python bench/import_bench.py [--resources 200000] [--runs 3] [--workers N]
                                 [--backends sqlite,postgres] [--synthea DIR]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from cmio.bulk.importer import import_paths
from cmio.model import Model, load_model
from cmio.testing.pg import running_postgres, with_database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_ndjson import generate

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = REPO_ROOT.parent / "shared" / "data" / "synthea-r4"


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children (the workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _median_run(
    make_url: Callable[[], str], inputs: list[Path], model: Model, runs: int, workers: int
) -> tuple[int, float, float, float]:
    """(resources, median seconds, median resources/s, median CPU µs per resource) over
    ``runs`` fresh imports. CPU time moves far less than wall time on a shared machine."""
    seconds: list[float] = []
    cpu: list[float] = []
    resources = 0
    for _ in range(runs):
        url = make_url()
        before = _cpu_seconds()
        summary = import_paths(url, inputs, model=model, workers=workers)
        used = _cpu_seconds() - before
        assert summary.rejected == 0, f"{summary.rejected} rejected"
        resources = summary.resources
        seconds.append(summary.seconds)
        cpu.append(used / max(1, resources) * 1e6)
        print(
            f"  .. {resources} resources in {summary.seconds:.2f} s, {cpu[-1]:.0f} µs CPU each",
            file=sys.stderr,
        )
    median = statistics.median(seconds)
    return resources, median, resources / median, statistics.median(cpu)


@contextlib.contextmanager
def _backend(name: str, tmp: Path) -> Iterator[Callable[[], str]]:
    if name == "sqlite":

        def sqlite_url() -> str:
            return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"

        yield sqlite_url
        return
    with running_postgres() as server:

        def pg_url() -> str:
            dbname = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            return with_database(server, dbname)

        yield pg_url


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--synthea", type=Path, default=SYNTHEA)
    parser.add_argument("--skip-synthea", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    model = load_model()
    tmp = Path(tempfile.mkdtemp(prefix="cmio-bench-"))
    rows: list[str] = []
    try:
        data = tmp / "ndjson"
        counts = generate(data, args.resources, args.seed)
        print(f"generated {sum(counts.values())} resources: {counts}", file=sys.stderr)
        sets: list[tuple[str, list[Path]]] = [
            (f"NDJSON, generated ({sum(counts.values()):,})", [data])
        ]
        if not args.skip_synthea and (args.synthea / "bundles").is_dir():
            sets.append(("Synthea, 53 transaction Bundles", [args.synthea / "bundles"]))
        for backend in args.backends.split(","):
            with _backend(backend, tmp) as make_url:
                for label, inputs in sets:
                    print(f"{label} -> {backend}", file=sys.stderr)
                    n, secs, rate, cpu = _median_run(
                        make_url, inputs, model, args.runs, args.workers
                    )
                    rows.append(
                        f"| {label} | {backend} | {args.workers} | {n:,} | {secs:.2f}"
                        f" | {rate:,.0f} | {cpu:,.0f} |"
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmedian of {args.runs} runs, {os.cpu_count()} CPUs\n")
    print("| data set | store | workers | resources | seconds | resources/s | CPU µs/resource |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
