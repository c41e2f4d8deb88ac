"""Search-index extraction cost per resource (``SearchIndexer.table_rows``), in process.

Usage::

    python bench/index_extract.py DATA_DIR [--per-file 400] [--full-text 0|1] [--warm OTHER_DIR]

Reads the first ``--per-file`` resources of every ``*.ndjson`` file in DATA_DIR (for
example a ``cmio synth`` output), warms the per-type plans, then prints the median of
5 passes in µs per resource (wall clock; also the least and median CPU time of a pass,
which a shared machine disturbs less). Run it side by side with another checkout by setting
``PYTHONPATH`` to that checkout's ``src``.

Repeated passes over the same resources flatter the extractor's per-value memos (every
value was met in the pass before). ``--warm OTHER_DIR`` measures an import's situation
instead: each pass uses a new indexer warmed on the resources of another data set (plans
compiled, memos holding other data's values) and meets each resource of DATA_DIR once.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

import orjson

from cmio.indexing import SearchIndexer
from cmio.model import load_model


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--per-file", type=int, default=400)
    parser.add_argument("--full-text", type=int, choices=[0, 1], default=1)
    parser.add_argument(
        "--count-calls", action="store_true", help="count calls in one pass (load-independent)"
    )
    parser.add_argument("--warm", type=Path, help="a new indexer per pass, warmed on this data")
    args = parser.parse_args()
    model = load_model()
    takes_flag = "full_text" in inspect.signature(SearchIndexer).parameters

    def new_indexer() -> SearchIndexer:
        if takes_flag:
            return SearchIndexer(model, full_text=bool(args.full_text))
        return SearchIndexer(model)

    indexer = new_indexer()
    resources = _read(args.data, args.per_file)
    warm = _read(args.warm, args.per_file) if args.warm else resources
    for resource in warm:
        indexer.table_rows(resource)
    passes, cpu = [], []
    for _ in range(5):
        if args.warm:
            indexer = new_indexer()
            for resource in warm:
                indexer.table_rows(resource)
        t0, c0 = time.perf_counter(), time.process_time()
        for resource in resources:
            indexer.table_rows(resource)
        passes.append((time.perf_counter() - t0) / len(resources) * 1e6)
        cpu.append((time.process_time() - c0) / len(resources) * 1e6)
    label = f"full text {args.full_text}" if takes_flag else "(no full-text option)"
    if args.warm:
        label += ", each met once (warmed on other data)"
    if args.count_calls:
        _count_calls(indexer, resources)
    print(
        f"{len(resources)} resources {label}: {statistics.median(passes):.1f} µs/resource"
        f" (CPU: least {min(cpu):.1f}, median {statistics.median(cpu):.1f})"
    )


def _read(folder: Path, per_file: int) -> list[dict[str, object]]:
    """The first ``per_file`` resources of every ``*.ndjson`` file in ``folder``."""
    found = []
    for path in sorted(folder.glob("*.ndjson")):
        lines = path.read_bytes().split(b"\n")[:per_file]
        found += [orjson.loads(line) for line in lines if line.strip()]
    return found


def _count_calls(indexer: SearchIndexer, resources: list[dict[str, object]]) -> None:
    """Python function calls and FHIRPath evaluations per resource in one pass."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for resource in resources:
        indexer.table_rows(resource)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    calls = sum(v[1] for v in stats.values())
    evaluations = sum(
        v[1]
        for k, v in stats.items()
        if k[2] in ("evaluate", "nodes") and k[0].endswith("fhirpath/engine.py")
    )
    n = len(resources)
    print(f"{calls / n:.0f} Python calls, {evaluations / n:.1f} FHIRPath evaluations per resource")


if __name__ == "__main__":
    main()
