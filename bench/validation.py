"""Benchmark: profile validation of Synthea resources (median µs per resource, per type).

For every resource of the Synthea bundles (and the bulk NDJSON files) three
figures are measured, each the median over resources of one type of the best
of ``--repeat`` timings of one call:

* ``base``: the base pass alone, the FHIRPath invariants and required/extensible
  bindings of the R4 definitions (``Validator.validate(r, structure=False,
  meta_profiles=False)``);
* ``structure``: structural validation (:func:`cmio.validation.validate_structure`);
* ``full``: both, as ``$validate`` and validation on write run them.

The target is a ``base`` figure under 200 µs for a typical resource. Definitions
are compiled before timing (a warm-up pass), as they are once per server.

Usage::

    python bench/validation.py [--shared ../shared] [--repeat 3] [--limit 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from cmio.model import load_model
from cmio.validation import validate_structure
from cmio.validation.validator import Validator


def _resources(shared: Path) -> Iterator[dict[str, Any]]:
    synthea = shared / "data" / "synthea-r4"
    for path in sorted((synthea / "bundles").glob("*.json")):
        for entry in orjson.loads(path.read_bytes())["entry"]:
            yield entry["resource"]
    for path in sorted((synthea / "bulk-ndjson-10-patients-partial").glob("*.ndjson")):
        if path.stem != "log":
            for line in path.read_bytes().splitlines():
                if line.strip():
                    yield orjson.loads(line)


def _best(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=root.parent / "shared")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=2000, help="resources per type at most")
    args = parser.parse_args()

    model = load_model()
    started = time.perf_counter()
    validator = Validator(model)
    setup = time.perf_counter() - started
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in _resources(args.shared):
        bucket = by_type[resource["resourceType"]]
        if len(bucket) < args.limit:
            bucket.append(resource)
    started = time.perf_counter()
    for bucket in by_type.values():
        for resource in bucket:
            validator.validate(resource, meta_profiles=False)
    warmup = time.perf_counter() - started

    print(f"Validator(model): {setup:.2f} s; warm-up pass (compiles definitions): {warmup:.2f} s")
    print()
    print("| type | resources | base µs (median) | structure µs | full µs | base p90 µs |")
    print("|---|---:|---:|---:|---:|---:|")
    all_base: list[float] = []
    for rtype in sorted(by_type, key=lambda t: -len(by_type[t])):
        base, structure, full = [], [], []
        for r in by_type[rtype]:
            base_pass = partial(validator.validate, r, structure=False, meta_profiles=False)
            base.append(_best(base_pass, args.repeat))
            structure.append(_best(partial(validate_structure, model, r), args.repeat))
            full.append(_best(partial(validator.validate, r, meta_profiles=False), args.repeat))
        all_base += base
        p90 = statistics.quantiles(base, n=10)[-1] if len(base) > 1 else base[0]
        print(
            f"| {rtype} | {len(base)} | {statistics.median(base):.0f} | "
            f"{statistics.median(structure):.0f} | {statistics.median(full):.0f} | {p90:.0f} |"
        )
    print()
    print(f"All {len(all_base)} resources: base median {statistics.median(all_base):.0f} µs")


if __name__ == "__main__":
    main()
