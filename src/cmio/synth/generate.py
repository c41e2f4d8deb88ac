"""Run the generator: the health system, then every patient, into NDJSON or Bundles.

Single-process runs stream patient by patient into the output files; with
``workers > 1`` patient ranges are generated in worker processes into shard
folders, then concatenated in order, so the output is byte-identical whatever the
number of workers.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from cmio.synth.context import Run
from cmio.synth.ids import Clock
from cmio.synth.patient import generate_patient
from cmio.synth.system import build_system
from cmio.synth.writer import AUDIT_LOG, BundleSink, NdjsonSink, Sink, merge_shards

__all__ = ["DEFAULT_END", "SynthConfig", "SynthSummary", "generate"]

DEFAULT_END = date(2025, 12, 31)
"""Last simulated day unless configured (a fixed date keeps runs reproducible)."""

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """What to generate.

    Attributes:
        patients: number of patients.
        out: output folder.
        years: simulated years of care (ending on ``end``).
        seed: the seed (same seed, same bytes).
        format: ``ndjson`` (Bulk Data layout) or ``bundles`` (transaction Bundles).
        workers: worker processes (1: generate in this process).
        end: last simulated day.
    """

    patients: int
    out: Path
    years: float = 1.0
    seed: int = 1
    format: str = "ndjson"
    workers: int = 1
    end: date = DEFAULT_END


@dataclass(slots=True)
class SynthSummary:
    """Outcome of a run: counts per resource type, audit rows and timing."""

    patients: int
    seconds: float
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def resources(self) -> int:
        """Resources written."""
        return sum(self.by_type.values())


def _run(config: SynthConfig) -> Run:
    days = max(1, round(config.years * 365.25))
    clock = Clock(config.end - timedelta(days=days - 1), days)
    return Run(config.seed, build_system(config.seed, config.patients), clock)


def _sink(kind: str, out: Path) -> Sink:
    if kind == "ndjson":
        return NdjsonSink(out)
    if kind == "bundles":
        return BundleSink(out)
    raise ValueError(f"unknown format {kind!r} (ndjson or bundles)")


def _clear(out: Path) -> None:
    """Remove a previous run's output files (only the names this generator writes)."""
    if not out.exists():
        return
    for pattern in ("*.ndjson", "patient-*.json", "system.json", AUDIT_LOG):
        for path in out.glob(pattern):
            path.unlink()
    shutil.rmtree(out / ".shards", ignore_errors=True)


def _generate_range(
    run: Run, sink: Sink, first: int, last: int, progress: ProgressCallback | None
) -> None:
    for index in range(first, last):
        ctx = generate_patient(run, index)
        sink.write(ctx.out)
        sink.write_rows(ctx.audit_rows)
        if progress is not None:
            progress(1)


def _shard_task(args: tuple[SynthConfig, int, int, int]) -> tuple[int, dict[str, int]]:
    config, shard, first, last = args
    run = _run(config)
    sink = _sink(config.format, config.out / ".shards" / f"{shard:05d}")
    try:
        _generate_range(run, sink, first, last, None)
    finally:
        sink.close()
    return last - first, sink.counts


def generate(config: SynthConfig, progress: ProgressCallback | None = None) -> SynthSummary:
    """Generate a synthetic health system into ``config.out``.

    Args:
        config: what to generate.
        progress: called with the number of patients just finished.

    Returns:
        The summary (resources per type, seconds).
    """
    started = time.perf_counter()
    out = config.out
    _clear(out)
    run = _run(config)
    sink = _sink(config.format, out)
    try:
        sink.write(list(run.system.resources()))
        if config.workers <= 1 or config.patients < 200:
            _generate_range(run, sink, 0, config.patients, progress)
    finally:
        sink.close()
    counts = dict(sink.counts)
    if config.workers > 1 and config.patients >= 200:
        chunk = max(50, min(2000, config.patients // (config.workers * 8)))
        tasks = [
            (config, shard, first, min(config.patients, first + chunk))
            for shard, first in enumerate(range(0, config.patients, chunk))
        ]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(config.workers) as pool:
            for done, shard_counts in pool.imap(_shard_task, tasks):
                for rtype, n in shard_counts.items():
                    counts[rtype] = counts.get(rtype, 0) + n
                if progress is not None:
                    progress(done)
        merge_shards(out, [out / ".shards" / f"{shard:05d}" for shard in range(len(tasks))])
        shutil.rmtree(out / ".shards", ignore_errors=True)
    return SynthSummary(config.patients, time.perf_counter() - started, counts)
