"""The five quality eCQMs on a large synthetic system (DuckDB): full, materialized, incremental.

Input: ``cmio synth`` output (Bulk NDJSON; generated when the folder has no
``Patient.ndjson``, e.g. ``--patients 100000 --workers 2``). The last simulated day
(2025-12-31) is split off as "one day of new data": the encounters, observations,
conditions, procedures, reports, orders and claims dated that day go to an in-memory
list, everything else to ``DIR/base`` (filtered NDJSON copies). Measured, side by side:

* **full** (baseline): the five measures over the complete NDJSON folder, views included
  (what a nightly recompute costs);
* **build**: materializing the measure tables of ``base`` into ``DIR/measures.duckdb``;
* **measures on tables**: the five measures' population SQL over the materialized tables;
* **incremental**: applying the day's resources to the tables, then the five measures
  re-evaluated for the patients the day touches only (:meth:`MeasureTables.refresh`),
  checked equal (per patient) to the full run; beside it, the same with the measures
  re-evaluated over every patient.

With ``--replicate K`` the materialized tables are then copied K times with fresh ids
(``r<k>-`` prefixes; practitioners, organizations and payers shared) and the measures and
the incremental step run again on K times the patients; the counts must be exactly K
times the base counts. Figures are medians of ``--repeat`` runs (full and build: one run
each). Usage::

    python bench/measures.py bench/out/measures-10k --patients 10000 --workers 2 --replicate 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from cmio.measures import Period, builtin_measures, evaluate_measures
from cmio.measures.incremental import MeasureTables
from cmio.synth.generate import SynthConfig, generate

PERIOD = Period.parse("2025-01-01/2025-12-31")
DAY = "2025-12-31"
_DATED = (
    "Encounter",
    "Observation",
    "Condition",
    "Procedure",
    "DiagnosticReport",
    "ServiceRequest",
    "MedicationRequest",
    "Claim",
)
_WHEN = (
    "substr(coalesce(json->>'$.period.start', json->>'$.effectiveDateTime',"
    " json->>'$.effectivePeriod.start', json->>'$.performedDateTime',"
    " json->>'$.performedPeriod.start', json->>'$.authoredOn', json->>'$.onsetDateTime',"
    " json->>'$.recordedDate', json->>'$.created'), 1, 10)"
)


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def split_day(folder: Path) -> tuple[Path, list[dict[str, Any]]]:
    """``folder/base`` without the last day's dated resources, and those resources."""
    base = folder / "base"
    base.mkdir(exist_ok=True)
    day: list[dict[str, Any]] = []
    con = duckdb.connect()
    try:
        for path in sorted(folder.glob("*.ndjson")):
            rtype = path.name.split(".")[0]
            target = base / path.name
            if rtype not in _DATED:
                if not target.exists():
                    target.symlink_to(path.resolve())
                continue
            if not target.exists():
                cursor = con.execute(
                    f"SELECT json::VARCHAR FROM read_ndjson_objects({_q(path)})"
                    f" WHERE coalesce({_WHEN}, '') <> '{DAY}'"
                )
                with target.open("w", encoding="utf-8") as out:
                    while batch := cursor.fetchmany(50_000):
                        out.writelines(text + "\n" for (text,) in batch)
            rows = con.execute(
                f"SELECT json::VARCHAR FROM read_ndjson_objects({_q(path)}) WHERE {_WHEN} = '{DAY}'"
            ).fetchall()
            day += [json.loads(r[0]) for r in rows]
    finally:
        con.close()
    return base, day


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _rows(results: list[Any]) -> dict[str, list[dict[str, Any]]]:
    return {r.measure.id: r.members.sort_by("patient_id").to_pylist() for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--replicate", type=int, default=1, help="copies of the base tables (fresh ids)"
    )
    args = parser.parse_args()
    folder: Path = args.folder
    if not (folder / "Patient.ndjson").exists():
        start = time.perf_counter()
        generate(SynthConfig(patients=args.patients, out=folder, seed=11, workers=args.workers))
        print(f"generated {args.patients} patients in {time.perf_counter() - start:.0f} s")
    measures = list(builtin_measures().values())
    size = sum(p.stat().st_size for p in folder.glob("*.ndjson")) / 1e9
    print(f"input: {folder} ({size:.1f} GB NDJSON), cores: {os.cpu_count()}")
    base, day = split_day(folder)
    print(f"one day of new data: {len(day)} resources dated {DAY}")

    full_s, full = _timed(
        lambda: evaluate_measures(measures, PERIOD, folder, threads=args.threads), 1
    )
    print(f"full (views from NDJSON + 5 measures): {full_s:.1f} s")
    for result in full:
        print(f"  {result.measure.id}: {dict(result.counts)} score={result.score}")

    db = folder / "measures.duckdb"
    if db.exists():
        db.unlink()
    tables = MeasureTables(db, threads=args.threads)
    try:
        names = sorted({v for m in measures for v in _views(m)})
        build_s, _ = _timed(lambda: tables.build(names, base), 1)
        print(f"build measure tables from base: {build_s:.1f} s")
        eval_s, base_results = _timed(lambda: tables.evaluate(measures, PERIOD), args.repeat)
        print(f"5 measures on the materialized tables: {eval_s:.2f} s (median of {args.repeat})")
        if args.replicate > 1:
            replicate(tables, args.replicate)
            rep_s, rep = _timed(lambda: tables.evaluate(measures, PERIOD), args.repeat)
            patients = tables.con.execute("SELECT count(*) FROM mp_patient").fetchall()[0][0]
            print(
                f"5 measures on the tables x{args.replicate} ({patients} patients): {rep_s:.2f} s"
            )
            for small, big in zip(base_results, rep, strict=True):
                scaled = {k: v * args.replicate for k, v in small.counts.items()}
                if dict(big.counts) != scaled:
                    raise SystemExit(
                        f"{small.measure.id}: replicated counts are not x{args.replicate}"
                    )
            print("replicated counts are exactly the base counts times the factor")

        previous = rep if args.replicate > 1 else base_results

        def recompute() -> list[Any]:
            tables.apply(day)
            return tables.evaluate(measures, PERIOD)

        all_s, _ = _timed(recompute, args.repeat)
        inc_s, refreshed = _timed(lambda: tables.refresh(previous, day), args.repeat)
        apply_s, _ = _timed(lambda: tables.apply(day), args.repeat)
    finally:
        tables.close()
    print(f"apply one day + 5 measures over every patient: {all_s:.2f} s")
    print(f"incremental (apply one day + 5 measures for the touched patients): {inc_s:.2f} s")
    print(f"apply alone: {apply_s:.2f} s")
    same = _rows(refreshed) == _rows(full)
    if args.replicate > 1:
        print("(replicated: the per-patient check against the full run covers copy 0 only)")
        same = all(
            [r for r in big if not r["patient_id"].startswith("r")] == small
            for big, small in zip(_rows(refreshed).values(), _rows(full).values(), strict=True)
        )
    print(f"incremental equals full per patient: {same}")
    if args.replicate == 1:
        print(f"ratio full / incremental: {full_s / inc_s:.1f}x")
    if not same:
        raise SystemExit("incremental result differs from the full run")


_SHARED = ("practitioner_id", "organization_id", "payor_id", "gp_id")


def replicate(tables: MeasureTables, copies: int) -> None:
    """Add ``copies - 1`` copies of every measure table's rows with fresh ids: each id
    column (``*_id``, ``resource_key``; not the shared practitioners, organizations and
    payers) prefixed ``r<k>-``. The copies are new patients with the same care."""
    con = tables.con
    for name in tables.tables():
        columns = [r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
        if name in ("mp_practitioner", "mp_practitioner_role", "mp_organization"):
            continue
        for k in range(1, copies):
            select = ", ".join(
                f'\'r{k}-\' || "{c}" AS "{c}"'
                if (c.endswith("_id") or c == "resource_key") and c not in _SHARED
                else f'"{c}"'
                for c in columns
            )
            con.execute(
                f'INSERT INTO "{name}" SELECT {select} FROM "{name}" WHERE NOT starts_with(CAST("{columns[0]}" AS VARCHAR), \'r\')'
            )
    con.execute("CHECKPOINT")


def _views(measure: Any) -> tuple[str, ...]:
    from cmio.measures.definition import common_library
    from cmio.measures.sql import measure_query

    return measure_query(measure, PERIOD, common_library()).views


if __name__ == "__main__":
    main()
