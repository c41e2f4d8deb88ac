"""Every measure family of issue 10 over 100,000 patients: EHR use, cost, data quality
(from the input tables ``bench/oversight_prepare.py`` leaves) and the five eCQMs (on a
``MeasureTables`` file), with wall and CPU seconds per family and in total, a digest of
every output table, and the incremental refresh after a day's new data.

Usage (inputs prepared once; the eCQM file is copied, never modified)::

    python bench/oversight_prepare.py bench/out/oversight-20k /tmp/m7 --copies 5
    python bench/oversight_tables.py /tmp/m7 --ecqm /tmp/m7/m100k.duckdb \\
        --ecqm-day /tmp/m7/ecqm_day.json --repeat 3

For side-by-side runs of two code versions, prefix ``PYTHONPATH=/tmp/old/src``: the
digests must be equal.

``--day`` measures the incremental refresh of EHR use, cost and data quality
(:mod:`cmio.measures.ehr_use.incremental`, :mod:`cmio.measures.cost_incremental`,
:mod:`cmio.measures.adherence_incremental`): each family's state is built from
``DIR/base`` (untimed), ``DIR/day`` (the day's input rows, five copies like the base) is
applied by ``refresh`` (timed, wall and process CPU), and the refreshed outputs' digest
is compared with a full computation over base + day (also timed)::

    python bench/oversight_tables.py /tmp/m7 --day --ecqm /tmp/m7/m100k.duckdb \\
        --ecqm-day /tmp/m7/ecqm_day.json

(the eCQMs' row: :meth:`MeasureTables.refresh` of the day's resources on a copy of the
tables, against evaluating every patient on the refreshed tables).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cmio.measures import Period as MeasurePeriod
from cmio.measures import builtin_measures
from cmio.measures.adherence import data_quality
from cmio.measures.adherence_incremental import DataQualityState
from cmio.measures.cost import cost_of_care
from cmio.measures.cost_incremental import CostState
from cmio.measures.ehr_use import Period, SqlEngine, ehr_use
from cmio.measures.ehr_use.incremental import EhrUseState
from cmio.measures.incremental import MeasureTables
from cmio.measures.state import StateDb
from cmio.terminology.factory import open_terminology

PERIOD = Period.parse("2025-01-01/2025-12-31")
ECQM_PERIOD = MeasurePeriod.parse("2025-01-01/2025-12-31")


def cpu() -> float:
    """Process CPU seconds (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _norm(value: Any) -> Any:
    if isinstance(value, float) and not math.isnan(value):
        return float(f"{value:.10g}")
    return value


def table_digest(tables: Mapping[str, pa.Table]) -> str:
    """Digest of output tables (rows sorted, floats to 10 significant digits)."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        rows = [
            json.dumps({k: _norm(v) for k, v in row.items()}, sort_keys=True, default=str)
            for row in tables[name].to_pylist()
        ]
        digest.update(name.encode())
        digest.update("\n".join(sorted(rows)).encode())
    return digest.hexdigest()[:16]


def ecqm_digest(results: list[Any]) -> str:
    """Digest of eCQM results (as ``bench/measures_tables.py``)."""
    digest = hashlib.sha256()
    for r in results:
        rows = r.members.sort_by("patient_id").to_pylist()
        digest.update(json.dumps(rows, sort_keys=True, default=str).encode())
        digest.update(json.dumps(r.strata.to_pylist(), sort_keys=True, default=str).encode())
        digest.update(json.dumps([dict(r.counts), r.score]).encode())
    return digest.hexdigest()[:16]


def read_inputs(folder: Path) -> dict[str, dict[str, pa.Table]]:
    """``folder/<family>/<table>.parquet`` as Arrow tables by family."""
    return {
        family: {p.stem: pq.read_table(p) for p in sorted((folder / family).glob("*.parquet"))}
        for family in ("ehr", "cost", "dq")
    }


def merged(base: Mapping[str, pa.Table], day: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """Base rows plus the day's rows, table by table."""
    return {
        name: pa.concat_tables([table, day[name].cast(table.schema)])
        if name in day and day[name].num_rows
        else table
        for name, table in base.items()
    }


def run_families(inputs: Mapping[str, Mapping[str, pa.Table]], terminology: Any) -> dict[str, Any]:
    """The three oversight families, each on its own DuckDB engine."""
    out: dict[str, Any] = {}
    with SqlEngine() as engine:
        out["ehr"] = ehr_use(inputs["ehr"], PERIOD, engine)
    with SqlEngine() as engine:
        out["cost"] = cost_of_care(inputs["cost"], PERIOD, engine)
    with SqlEngine() as engine:
        out["dq"] = data_quality(inputs["dq"], engine, terminology)
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    c, w = cpu(), time.perf_counter()
    result = fn()
    return time.perf_counter() - w, cpu() - c, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the prepared inputs (base/, day/)")
    parser.add_argument("--ecqm", type=Path, default=None, help="MeasureTables file (copied)")
    parser.add_argument("--ecqm-day", type=Path, default=None, help="eCQM day (JSON list)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--families", default="ehr,cost,dq,ecqm")
    parser.add_argument("--day", action="store_true", help="time the incremental refresh")
    args = parser.parse_args()
    families = args.families.split(",")
    inputs = read_inputs(args.folder / "base")
    service = open_terminology(None)
    if args.day:
        try:
            totals = day_refresh(
                inputs, read_inputs(args.folder / "day"), families, service.resources
            )
            if "ecqm" in families and args.ecqm is not None and args.ecqm_day is not None:
                totals = [a + b for a, b in zip(totals, ecqm_refresh(args), strict=True)]
            print("| total | " + " | ".join(f"{v:.2f}" for v in totals) + " | | |")
        finally:
            service.close()
        return
    runs: dict[str, list[tuple[float, float]]] = {f: [] for f in families}
    digests: dict[str, str] = {}
    scratch = Path(tempfile.mkdtemp(prefix="oversight-tables-"))
    try:
        ecqm_copy = scratch / "ecqm.duckdb"
        if "ecqm" in families and args.ecqm is not None:
            shutil.copy(args.ecqm, ecqm_copy)
        for _ in range(args.repeat):
            for family in families:
                if family == "ecqm":
                    if args.ecqm is None:
                        continue
                    tables = MeasureTables(ecqm_copy)
                    try:
                        measures = list(builtin_measures().values())
                        wall, used, results = _timed(
                            functools.partial(tables.evaluate, measures, ECQM_PERIOD)
                        )
                    finally:
                        tables.close()
                    digests[family] = ecqm_digest(results)
                else:
                    one = {family: inputs[family]}
                    wall, used, out = _timed(
                        functools.partial(run_one, family, one[family], service.resources)
                    )
                    digests[family] = table_digest(out)
                runs[family].append((wall, used))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        service.close()
    report(runs, digests, args.repeat)


def refresh_one(
    family: str, base: Mapping[str, pa.Table], day: Mapping[str, pa.Table], terminology: Any
) -> tuple[float, float, dict[str, pa.Table]]:
    """Build ``family``'s state from ``base`` (in memory), then time ``refresh(day)``."""
    with StateDb() as db:
        state: Any
        if family == "ehr":
            state = EhrUseState(db, PERIOD)
        elif family == "cost":
            state = CostState(db, PERIOD)
        else:
            state = DataQualityState(db, terminology)
        state.build(base)
        return _timed(functools.partial(state.refresh, day))


def day_refresh(
    base: Mapping[str, Mapping[str, pa.Table]],
    day: Mapping[str, Mapping[str, pa.Table]],
    families: list[str],
    terminology: Any,
) -> list[float]:
    """Refresh wall and CPU per family against a full run over base + day."""
    print("| family | refresh wall (s) | refresh CPU (s) | full wall (s) | full CPU (s) |"
          " digest refresh | digest full |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0]
    for family in (f for f in families if f != "ecqm"):
        wall, used, out = refresh_one(family, base[family], day[family], terminology)
        whole = merged(base[family], day[family])
        f_wall, f_used, full = _timed(functools.partial(run_one, family, whole, terminology))
        got, want = table_digest(out), table_digest(full)
        mark = "" if got == want else " **DIFFERENT**"
        for i, v in enumerate((wall, used, f_wall, f_used)):
            totals[i] += v
        print(f"| {family} | {wall:.2f} | {used:.2f} | {f_wall:.2f} | {f_used:.2f} |"
              f" `{got}`{mark} | `{want}` |", flush=True)  # fmt: skip
    return totals


def ecqm_refresh(args: argparse.Namespace) -> list[float]:
    """The eCQMs' day refresh (:meth:`MeasureTables.refresh`) on a copy of the tables,
    against evaluating every patient on the refreshed tables."""
    day = json.loads(args.ecqm_day.read_text(encoding="utf-8"))
    measures = list(builtin_measures().values())
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "ecqm.duckdb"
        shutil.copy(args.ecqm, copy)
        tables = MeasureTables(copy)
        try:
            previous = tables.evaluate(measures, ECQM_PERIOD)
            wall, used, results = _timed(functools.partial(tables.refresh, previous, day))
            f_wall, f_used, full = _timed(functools.partial(tables.evaluate, measures, ECQM_PERIOD))
        finally:
            tables.close()
    got, want = ecqm_digest(results), ecqm_digest(full)
    mark = "" if got == want else " **DIFFERENT**"
    print(f"| ecqm | {wall:.2f} | {used:.2f} | {f_wall:.2f} | {f_used:.2f} |"
          f" `{got}`{mark} | `{want}` |", flush=True)  # fmt: skip
    return [wall, used, f_wall, f_used]


def run_one(family: str, inputs: Mapping[str, pa.Table], terminology: Any) -> dict[str, pa.Table]:
    """One family's output tables over ``inputs`` on a fresh DuckDB engine."""
    with SqlEngine() as engine:
        if family == "ehr":
            return ehr_use(inputs, PERIOD, engine)
        if family == "cost":
            return cost_of_care(inputs, PERIOD, engine)
        return data_quality(inputs, engine, terminology)


def report(runs: Mapping[str, list[tuple[float, float]]], digests: Mapping[str, str],
           repeat: int) -> None:  # fmt: skip
    """Median wall and CPU per family and their total."""
    total_w = total_c = 0.0
    print(f"| family | wall (s) | cpu (s) | walls | digest |  (median of {repeat})")
    print("|---|---:|---:|---|---|")
    for family, items in runs.items():
        if not items:
            continue
        wall = statistics.median(w for w, _ in items)
        used = statistics.median(c for _, c in items)
        total_w, total_c = total_w + wall, total_c + used
        walls = ", ".join(f"{w:.1f}" for w, _ in items)
        print(f"| {family} | {wall:.2f} | {used:.2f} | {walls} | {digests.get(family, '')} |")
    print(f"| total | {total_w:.2f} | {total_c:.2f} | | |")


if __name__ == "__main__":
    main()
