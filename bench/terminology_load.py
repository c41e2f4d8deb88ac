"""SNOMED CT-scale load: a synthetic RF2 Snapshot into the concept store, closure built.

Writes a SNOMED-shaped release (:mod:`cmio.terminology.loaders.synthetic`,
350,000 concepts and 1.2 million relationship rows by default), then loads it
with the real RF2 loader (:func:`cmio.terminology.loaders.snomed.load_snomed`):
staging, concepts, designations, properties, is-a edges and the transitive
closure, in one transaction. The baseline in the same run is a plain parse of
the same three files (split every line, no storage), so the ratio says what
loading costs on top of reading. Also reports the closure size and a few
queries on the loaded store.

    python bench/terminology_load.py [--concepts 350000] [--relationships 1200000]
        [--is-a 1.7] [--repeat 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cmio.terminology.closure import transitive_closure
from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders import rf2
from cmio.terminology.loaders.snomed import SNOMED_URL, find_release, load_snomed
from cmio.terminology.loaders.synthetic import (
    ROOT,
    synthetic_hierarchy,
    write_synthetic_release,
)


def parse_only(folder: Path) -> int:
    """Baseline: read and split every row of the concept, description and relationship files."""
    release = find_release(folder)
    rows = 0
    for path, columns in (
        (release.concepts, rf2.CONCEPT_COLUMNS),
        (release.descriptions[0], rf2.DESCRIPTION_COLUMNS),
        (release.relationships, rf2.RELATIONSHIP_COLUMNS),
    ):
        for _ in rf2.read_rows(path, columns):
            rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concepts", type=int, default=350_000)
    parser.add_argument("--relationships", type=int, default=1_200_000)
    parser.add_argument("--is-a", type=float, default=1.7, help="is-a parents per concept")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="folder for release and store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmio-bench-") as tmp:
        work = args.work or Path(tmp)
        release = work / f"rf2-{args.concepts}-{args.relationships}-{args.is_a}"
        started = time.perf_counter()
        if not (release / "Snapshot").is_dir():
            stats = write_synthetic_release(
                release, args.concepts, args.relationships, args.is_a, seed=1
            )
            print(
                f"generated {stats.concepts:,} concepts, {stats.is_a:,} is-a of "
                f"{stats.relationships:,} relationships, {stats.descriptions:,} descriptions, "
                f"max depth {stats.max_depth} in {time.perf_counter() - started:.1f} s"
            )
        parents, _, _ = synthetic_hierarchy(args.concepts, args.is_a, seed=1)
        child = [i for i, ups in enumerate(parents) for _ in ups]
        parent = [p for ups in parents for p in ups]
        t0, c0 = time.perf_counter(), time.process_time()
        anc, _ = transitive_closure(len(parents), child, parent)
        closure_s, closure_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"closure alone: {anc.size:,} pairs in {closure_s:.1f} s (CPU {closure_cpu:.1f} s)")
        loads: list[float] = []
        baselines: list[float] = []
        cpus: list[float] = []
        for run in range(args.repeat):
            t0 = time.perf_counter()
            rows = parse_only(release)
            baselines.append(time.perf_counter() - t0)
            db = work / f"store-{run}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            with ConceptStore(db) as store:
                t0, c0 = time.perf_counter(), time.process_time()
                result, _ = load_snomed(store, release)
                loads.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                t0 = time.perf_counter()
                below = store.count(SNOMED_URL, under="404684003")
                query_ms = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                again, _ = load_snomed(store, release)
                rerun_s = time.perf_counter() - t0
            size = sum(
                Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()
            )
            print(
                f"run {run + 1}: parse-only baseline {baselines[-1]:.1f} s ({rows:,} rows); "
                f"load {loads[-1]:.1f} s (CPU {cpus[-1]:.1f} s; {result.count:,} concepts); "
                f"re-run skipped={again.skipped} in {rerun_s:.1f} s; "
                f"{below:,} concepts below 404684003 counted in {query_ms:.0f} ms; store {size / 1e6:.0f} MB"
            )
        load_median, base_median = statistics.median(loads), statistics.median(baselines)
        print(
            f"median load {load_median:.1f} s ({load_median / 60:.2f} min, "
            f"CPU {statistics.median(cpus):.1f} s), "
            f"parse-only {base_median:.1f} s, ratio {load_median / base_median:.1f}x; "
            f"root {ROOT}"
        )


if __name__ == "__main__":
    main()
