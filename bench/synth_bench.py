"""Synthetic health system generation speed (``cmio.synth``).

Generates ``--patients`` patients (each size in the list) with 1 and ``--workers``
processes into a temporary folder and reports wall-clock seconds, patients/s,
resources/s, resources per patient, output size and peak memory, then
extrapolates linearly to 100,000 patients (generation is per patient and
streaming, so time is linear in patients; the extrapolation uses the largest
measured size).

Usage::

    python bench/synth_bench.py [--patients 2000,10000] [--years 1] [--workers 2] [--seed 1]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
from pathlib import Path

from cmio.synth import SynthConfig, generate

__all__ = ["main"]


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", default="2000,10000")
    parser.add_argument("--years", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(x) for x in args.patients.split(",")]
    worker_counts = sorted({1, args.workers})
    print(f"years={args.years} seed={args.seed}\n")
    print(
        "| patients | workers | seconds | patients/s | resources | resources/s | res/patient | MiB on disk | peak RSS MiB | 100k patients (extrapolated) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for workers in worker_counts:
            root = Path(tempfile.mkdtemp(prefix="synth-bench-"))
            try:
                summary = generate(
                    SynthConfig(n, root / "out", years=args.years, seed=args.seed, workers=workers)
                )
                size = sum(p.stat().st_size for p in (root / "out").iterdir()) / 2**20
            finally:
                shutil.rmtree(root, ignore_errors=True)
            secs = summary.seconds
            per_patient = summary.resources / n
            print(
                f"| {n:,} | {workers} | {secs:.1f} | {n / secs:,.0f} | {summary.resources:,} |"
                f" {summary.resources / secs:,.0f} | {per_patient:.0f} | {size:,.0f} | {_peak_mib():,.0f} |"
                f" {100_000 / (n / secs):,.0f} s, {per_patient * 100_000 / 1e6:.1f} M resources |",
                flush=True,
            )


if __name__ == "__main__":
    main()
