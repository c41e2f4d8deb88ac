"""The five eCQMs on measure tables already built (a ``MeasureTables`` DuckDB file): wall
and CPU seconds, and a digest of every per-patient row, count, score and stratum.

Made for side-by-side runs of two code versions on the same tables (on a loaded machine
the process CPU time is steadier than the wall time), e.g. the 100,000-patient tables
``bench/measures.py --replicate 10`` leaves in ``DIR/measures.duckdb``::

    cp DIR/measures.duckdb /tmp/t.duckdb
    PYTHONPATH=/tmp/old/src python bench/measures_tables.py /tmp/t.duckdb --repeat 3
    python bench/measures_tables.py /tmp/t.duckdb --repeat 3

The digests must be equal. With ``--day FILE`` (a JSON list of resources), also the
incremental refresh (:meth:`MeasureTables.refresh`) on a copy of the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cmio.measures import Period, builtin_measures
from cmio.measures.incremental import MeasureTables

PERIOD = Period.parse("2025-01-01/2025-12-31")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _digest(results: list[Any]) -> str:
    digest = hashlib.sha256()
    for r in results:
        rows = r.members.sort_by("patient_id").to_pylist()
        digest.update(json.dumps(rows, sort_keys=True, default=str).encode())
        digest.update(json.dumps(r.strata.to_pylist(), sort_keys=True, default=str).encode())
        digest.update(json.dumps([dict(r.counts), r.score]).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--day", type=Path, default=None)
    args = parser.parse_args()
    measures = list(builtin_measures().values())
    walls, cpus, digest, results = [], [], "", []
    tables = MeasureTables(args.database)
    try:
        for _ in range(args.repeat):
            cpu, wall = _cpu(), time.perf_counter()
            results = tables.evaluate(measures, PERIOD)
            walls.append(time.perf_counter() - wall)
            cpus.append(_cpu() - cpu)
            digest = _digest(results)
    finally:
        tables.close()
    print(
        f"5 measures: wall {statistics.median(walls):.2f} s, cpu {statistics.median(cpus):.2f} s"
        f" (median of {args.repeat}; walls {', '.join(f'{w:.1f}' for w in walls)})"
        f" digest {digest}"
    )
    if args.day is None:
        return
    day = json.loads(args.day.read_text(encoding="utf-8"))
    walls, cpus = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "t.duckdb"
            shutil.copy(args.database, copy)
            tables = MeasureTables(copy)
            try:
                cpu, wall = _cpu(), time.perf_counter()
                refreshed = tables.refresh(results, day)
                walls.append(time.perf_counter() - wall)
                cpus.append(_cpu() - cpu)
            finally:
                tables.close()
    print(
        f"refresh ({len(day)} resources): wall {statistics.median(walls):.2f} s,"
        f" cpu {statistics.median(cpus):.2f} s (median of {args.repeat}) digest {_digest(refreshed)}"
    )


if __name__ == "__main__":
    main()
