"""Oversight measures (EHR use, cost, data quality) on a large synthetic system, beside
naive Python baselines, in one run.

For each family: reading the inputs through the SQL on FHIR views (DuckDB), then the
measure SQL on DuckDB; beside it a row-by-row Python baseline computing the same
core figures from the same input tables, whose results are checked equal:

* EHR use: Python sessionization (sort, walk each user's events, cut at the 5-minute
  timeout, attribute slices, intersect with merged scheduled intervals) -> EHR and
  in-hours seconds per clinician and month.
* Cost: Python dictionaries -> allowed cents per month and member months.
* Data quality: one terminology look-up per coding occurrence instead of one per
  distinct (system, code).

Each figure is the median of ``--repeat`` runs. Usage::

    python bench/oversight.py bench/out/oversight-20k --patients 20000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cmio.measures.adherence import check_codes, data_quality, read_adherence
from cmio.measures.cost import cost_of_care, read_cost
from cmio.measures.ehr_use import Period, SqlEngine, read_views
from cmio.measures.ehr_use.metrics import ehr_use
from cmio.synth.generate import SynthConfig, generate
from cmio.terminology.factory import open_terminology


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def naive_ehr(inputs: dict[str, Any], period: Period, timeout: int = 300) -> dict[Any, Any]:
    """EHR and in-hours seconds per (user, month), row by row."""
    events: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for row in inputs["audit_events"].to_pylist():
        start = row["start_ts"]
        if not row["user_id"] or not start or row["outcome"] not in (None, "0"):
            continue
        if not period.first <= start[:10] <= period.last:
            continue
        t0 = _epoch(start)
        t1 = _epoch(row["end_ts"]) if row["end_ts"] else t0 + (row["duration_s"] or 0)
        events[row["user_id"]].append((t0, max(t0, t1), start[:7]))
    owners = {s["schedule_id"]: s["user_id"] for s in inputs["schedules"].to_pylist()
              if s["user_id"]}  # fmt: skip
    raw: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for slot in inputs["slots"].to_pylist():
        user = owners.get(slot["schedule_id"])
        if user and slot["status"] in ("busy", "busy-tentative"):
            raw[user].append((slot["start_ts"], slot["end_ts"]))  # type: ignore[arg-type]
    ok = ("booked", "arrived", "checked-in", "fulfilled", "noshow")
    for appt in inputs["appointments"].to_pylist():
        if appt["user_id"] and appt["status"] in ok and appt["participant_status"] != "declined":
            raw[appt["user_id"]].append((appt["start_ts"], appt["end_ts"]))  # type: ignore[arg-type]
    sched: dict[str, list[tuple[int, int]]] = {}
    for user, items in raw.items():
        spans = sorted(
            (_epoch(s), _epoch(e)) for s, e in items  # type: ignore[arg-type]
            if s and e and period.first <= str(s)[:10] <= period.last
        )  # fmt: skip
        merged: list[list[int]] = []
        for s, e in spans:
            if e <= s:
                continue
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        sched[user] = [(s, e) for s, e in merged]
    out: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for user, items in events.items():
        items.sort()
        session: list[tuple[int, int, str]] = []
        reach = None
        for item in [*items, None]:
            if item is not None and (reach is None or item[0] - reach <= timeout):
                session.append(item)
                reach = item[1] if reach is None else max(reach, item[1])
                continue
            for i, (t0, _, month) in enumerate(session):
                b = session[i + 1][0] if i + 1 < len(session) else reach
                assert b is not None
                cell = out[(user, month)]
                cell[0] += b - t0
                for s, e in sched.get(user, ()):
                    if s < b and e > t0:
                        cell[1] += min(b, e) - max(t0, s)
            if item is not None:
                session, reach = [item], item[1]
    return {k: tuple(v) for k, v in out.items() if v[0]}


def naive_cost(inputs: dict[str, Any], period: Period) -> dict[str, int]:
    """Allowed cents per month, row by row."""
    out: dict[str, int] = defaultdict(int)
    for eob in inputs["eobs"].to_pylist():
        start = eob["start_ts"]
        if (
            start
            and period.first <= start[:10] <= period.last
            and eob["status"] != "entered-in-error"
        ):
            out[start[:7]] += eob["allowed"] or 0
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not (args.out / "AuditEvent.ndjson").exists():
        started = time.perf_counter()
        generate(SynthConfig(patients=args.patients, out=args.out, workers=args.workers))
        print(f"generated {args.patients:,} patients in {time.perf_counter() - started:.1f} s")
    period = Period.parse("2025-01/2026-12")
    rows: list[tuple[str, float, float | None, str]] = []

    t, ehr_inputs = _timed(lambda: read_views(args.out), 1)
    rows.append(("EHR use: read views", t, None, f"{ehr_inputs['audit_events'].num_rows:,} events"))

    def sql_ehr() -> Any:
        with SqlEngine() as engine:
            return ehr_use(ehr_inputs, period, engine)

    t_sql, ehr = _timed(sql_ehr, args.repeat)
    t_py, naive = _timed(lambda: naive_ehr(ehr_inputs, period), args.repeat)
    got = {(r["user_id"], r["month"]): (r["ehr_s"], r["in_s"])
           for r in ehr["clinician_month"].to_pylist() if r["ehr_s"]}  # fmt: skip
    rows.append(("EHR use: measure SQL vs Python sessionization", t_sql, t_py,
                 f"equal: {got == naive} ({len(got):,} clinician-months)"))  # fmt: skip

    t, cost_inputs = _timed(lambda: read_cost(args.out), 1)
    rows.append(("Cost: read views", t, None, f"{cost_inputs['eobs'].num_rows:,} EOBs"))

    def sql_cost() -> Any:
        with SqlEngine() as engine:
            return cost_of_care(cost_inputs, period, engine)

    t_sql, cost = _timed(sql_cost, args.repeat)
    t_py, naive_c = _timed(lambda: naive_cost(cost_inputs, period), args.repeat)
    got_c = {r["month"]: r["allowed_cents"] for r in cost["months"].to_pylist() if r["claims"]}
    rows.append(("Cost: measure SQL vs Python dictionaries", t_sql, t_py,
                 f"equal: {got_c == naive_c}"))  # fmt: skip

    t, dq_inputs = _timed(lambda: read_adherence(args.out), 1)
    rows.append(("Data quality: read views", t, None, f"{dq_inputs['coded'].num_rows:,} codings"))
    service = open_terminology(None)

    def sql_dq() -> Any:
        with SqlEngine() as engine:
            return data_quality(dq_inputs, engine, service.resources)

    sample = [(r["system"], r["code"]) for r in dq_inputs["coded"].to_pylist()
              if r["system"] and r["code"]][:20_000]  # fmt: skip

    def per_occurrence() -> int:
        return sum(check_codes([p], service.resources).num_rows for p in sample)

    t_sql, dq = _timed(sql_dq, args.repeat)
    rows.append(("Data quality: all tables (SQL + distinct-code checks)", t_sql, None,
                 f"{dq['score'].num_rows} score rows"))  # fmt: skip
    t_batch, _ = _timed(lambda: check_codes(sample, service.resources), args.repeat)
    t_py, _ = _timed(per_occurrence, 1)
    rows.append((f"Terminology checks of {len(sample):,} codings: distinct batch vs per occurrence",
                 t_batch, t_py, f"{len(set(sample)):,} distinct codes"))  # fmt: skip

    print("| step | cmio (s) | baseline (s) | ratio | note |\n|---|---:|---:|---:|---|")
    for name, a, b, note in rows:
        ratio = f"{b / a:.1f}x" if b else ""
        print(f"| {name} | {a:.2f} | {'' if b is None else f'{b:.2f}'} | {ratio} | {note} |")


if __name__ == "__main__":
    main()
