"""Search benchmark: typical clinical queries on a generated store (SQLite).

Usage::

    python bench/search.py --patients 1000 --db /tmp/search-bench.db [--http 16] [--everything]

Generates a synthetic health system with ``cmio synth`` (about 110 resources per
patient per simulated year), imports it with every search parameter indexed,
then runs each query ``--repeat`` times through the store (the SQL compiled by
:mod:`cmio.search`) and prints p50/p95 in milliseconds and the SQLite query
plan of each query. See https://hl7.org/fhir/R4/search.html.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cmio.bulk.importer import import_paths
from cmio.indexing import SearchIndexer
from cmio.model import load_model
from cmio.search.includes import Include, included
from cmio.store.base import SearchClause, SearchQuery
from cmio.store.sqlite import SqliteRepository

Query = tuple[str, str, list[tuple[str, str]], list[Include]]


def _pick(repo: SqliteRepository) -> dict[str, str]:
    """Values for the queries taken from the data (a busy patient, a common code...)."""
    conn = repo._connection()
    pid = conn.execute(
        "SELECT target_id FROM reference_index WHERE resource_type = 'Observation'"
        " AND param = 'patient' GROUP BY target_id ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()[0]
    code = conn.execute(
        "SELECT system, value FROM token_index WHERE resource_type = 'Condition' AND param = 'code'"
        " GROUP BY system, value ORDER BY COUNT(*) ASC LIMIT 1 OFFSET 5"
    ).fetchone()
    family = conn.execute(
        "SELECT norm FROM string_index WHERE resource_type = 'Patient' AND param = 'family'"
        " LIMIT 1 OFFSET 17"
    ).fetchone()[0]
    month = conn.execute(  # the busiest month of encounters
        "SELECT substr(low, 1, 7) FROM date_index WHERE resource_type = 'Encounter'"
        " AND param = 'date' GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()[0]
    return {
        "pid": pid,
        "cond": f"{code[0]}|{code[1]}",
        "fam": family[:3],
        "family": family,
        "week": f"{month}-08",
        "week_end": f"{month}-15",
    }


def queries(v: dict[str, str]) -> list[Query]:
    """The issue's typical clinical queries."""
    return [
        (
            "Observation patient+code+date, sort -date",
            "Observation",
            [
                ("patient", v["pid"]),
                ("code", "http://loinc.org|4548-4"),
                ("date", "ge2024-01-01"),
                ("_sort", "-date"),
            ],
            [],
        ),
        (
            "Observation patient, sort -date",
            "Observation",
            [("patient", v["pid"]), ("_sort", "-date")],
            [],
        ),
        (
            "Condition code + clinical-status",
            "Condition",
            [("code", v["cond"]), ("clinical-status", "active")],
            [],
        ),
        (
            "Patient name prefix + birthdate",
            "Patient",
            [("name", v["fam"]), ("birthdate", "lt1960")],
            [],
        ),
        ("Encounter chained subject.name", "Encounter", [("subject.name", v["family"])], []),
        (
            "Patient _has Observation code",
            "Patient",
            [("_has:Observation:patient:code", "http://loinc.org|4548-4"), ("name", v["fam"])],
            [],
        ),
        (
            "MedicationRequest _include medication",
            "MedicationRequest",
            [("patient", v["pid"])],
            [Include(False, "MedicationRequest", ("medication",), None, False)],
        ),
    ]


def more_queries(v: dict[str, str]) -> list[Query]:
    """Further parameter types (``--types``): reverse include, token ``:text``, a date
    range over every patient, ``_sort`` of a large match set, a two-level chain and
    full text."""
    return [
        (
            "Encounter _include subject (Patient)",
            "Encounter",
            [("patient", v["pid"])],
            [Include(False, "Encounter", ("subject",), None, False)],
        ),
        (
            "Patient _revinclude Condition:subject",
            "Patient",
            [("name", v["family"])],
            [Include(True, "Condition", ("subject",), None, False)],
        ),
        ("Condition code:text=hypertension", "Condition", [("code:text", "hypertension")], []),
        (
            "Encounter date one week (all patients)",
            "Encounter",
            [("date", f"ge{v['week']}"), ("date", f"lt{v['week_end']}")],
            [],
        ),
        (
            "Observation code, sort -date (all patients)",
            "Observation",
            [("code", "http://loinc.org|4548-4"), ("_sort", "-date")],
            [],
        ),
        (
            "Observation chain patient.name + code",
            "Observation",
            [("patient.name", v["family"]), ("code", "http://loinc.org|4548-4")],
            [],
        ),
        (
            "Observation chain encounter.subject.name",
            "Observation",
            [("encounter.subject:Patient.name", v["family"])],
            [],
        ),
        ("Condition _content=hypertension", "Condition", [("_content", "hypertension")], []),
    ]


def search_query(rtype: str, params: Sequence[tuple[str, str]]) -> SearchQuery:
    """The first page (50, with the total) of ``rtype`` searched with ``params``."""
    sort = tuple(v.split(",")[0] for k, v in params if k == "_sort")
    clauses = tuple(SearchClause(k, (v,)) for k, v in params if k != "_sort")
    return SearchQuery(rtype, clauses, count=50, sort=sort, total=True)


def run(
    repo: SqliteRepository, model_queries: list[Query], repeat: int, plans: bool = True
) -> None:
    """Time each query (wall p50/p95 and the mean CPU per search) and print its plan."""
    compiler = repo._indexer.search_compiler  # type: ignore[attr-defined]
    model = compiler.model
    print(f"{'query':48} {'hits':>6} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms':>8}")
    for label, rtype, params, incs in model_queries:
        query = search_query(rtype, params)
        times: list[float] = []
        cpu = time.process_time()
        for _ in range(repeat):
            t0 = time.perf_counter()
            with repo.read_transaction() as tx:
                page = tx.search(query)
                if incs:
                    included(tx, model, page.resources, incs)
            times.append((time.perf_counter() - t0) * 1000)
        cpu_ms = (time.process_time() - cpu) / max(1, repeat) * 1000
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(
            f"{label:48} {page.total!s:>6} {statistics.median(times):8.2f} {p95:8.2f} {cpu_ms:8.2f}"
        )
        if not plans:
            continue
        sql, _ = compiler.compile(query, "sqlite")
        plan = repo._connection().execute("EXPLAIN QUERY PLAN " + sql.text, sql.params).fetchall()
        for row in plan:
            print("      plan:", row[-1])


def compile_times(repo: SqliteRepository, model_queries: list[Query], repeat: int) -> None:
    """Median time to compile each query to SQL (page and count statements), no database."""
    compiler = repo._indexer.search_compiler  # type: ignore[attr-defined]
    print(f"{'query':48} {'compile ms':>10}")
    for label, rtype, params, _ in model_queries:
        query = search_query(rtype, params)
        times: list[float] = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            compiler.compile(query, "sqlite")
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{label:48} {statistics.median(times):10.2f}")


def everything(repo: SqliteRepository, repeat: int) -> None:
    """``Patient/[id]/$everything`` (first page of 1,000) for the patient with most
    resources, through the router (no HTTP)."""
    from cmio.api.env import Env
    from cmio.api.http import FhirRequest
    from cmio.api.router import FhirRouter

    conn = repo._connection()
    pid, members = conn.execute(
        "SELECT value, COUNT(*) FROM token_index WHERE param = '_compartment'"
        " GROUP BY value ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    model = repo._indexer.model  # type: ignore[attr-defined]
    router = FhirRouter(Env(repo, model, lambda r: []))
    request = FhirRequest("GET", f"Patient/{pid}/$everything", [("_count", "1000")])
    router.handle(request)  # warm: statement cache, pages
    times: list[float] = []
    cpu = time.process_time()
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = router.handle(request)
        times.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu) / max(1, repeat) * 1000
    assert response.status == 200, response.body[:300]
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(
        f"$everything Patient/{pid} ({members} resources in the compartment):"
        f" p50 {statistics.median(times):.2f} ms, p95 {p95:.2f} ms,"
        f" CPU {cpu_ms:.2f} ms per call, {len(response.body):,} bytes"
    )


def http(
    db: Path,
    model_queries: list[Query],
    connections: int,
    duration: int,
    audit: bool = True,
    workers: int = 2,
    port: int = 0,
) -> None:
    """Search requests/s over HTTP: ``cmio serve --workers 2`` driven by wrk, cycling
    through the typical queries (``_include`` as a query parameter), and the server's CPU
    per request (its process tree, from /proc); ``audit`` False serves with
    ``CMIO_AUDIT=off`` (no audit event written per request); ``port`` 0: a free one."""
    import os
    import shutil
    import tempfile
    from urllib.parse import urlencode

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from http_bench import free_port, running, tree_cpu, wrk

    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    paths = []
    for _, rtype, params, incs in model_queries:
        query = list(params) + [("_include", f"{i.source}:{i.params[0]}") for i in incs]
        paths.append(f"/fhir/{rtype}?{urlencode(query)}")
    items = ",".join(f'"{p}"' for p in paths)
    lua = (
        f"paths = {{{items}}}\ncounter = 0\nrequest = function()\n  counter = counter + 1\n"
        '  return wrk.format("GET", paths[(counter % #paths) + 1])\nend\n'
        "done = function(summary, latency, requests)\n  io.write(string.format("
        '"RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),'
        " latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.errors.status,"
        " summary.errors.connect + summary.errors.read + summary.errors.write"
        " + summary.errors.timeout))\nend\n"
    )
    tmp = Path(tempfile.mkdtemp(prefix="cmio-search-http-"))
    script = tmp / "search.lua"
    script.write_text(lua)
    port = port or free_port()
    cmd = [sys.executable, "-m", "cmio.cli.main", "serve", "--no-auth", "--port", str(port)]
    cmd += ["--database", f"sqlite:///{db}", "--workers", str(workers)]
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if not audit:
        env["CMIO_AUDIT"] = "off"
    with running(cmd, f"http://127.0.0.1:{port}/health", env) as proc:
        before = tree_cpu(proc.pid)
        rps, p50, p95, errors = wrk(f"http://127.0.0.1:{port}", script, connections, duration)
        cpu_us = (tree_cpu(proc.pid) - before) / max(rps * duration, 1) * 1e6
    shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"HTTP search (audit {'on' if audit else 'off'}, {workers} workers),"
        f" {connections} connections, {duration} s: {rps:,.0f} requests/s,"
        f" p50 {p50:.2f} ms, p95 {p95:.2f} ms, errors {errors},"
        f" server CPU {cpu_us:,.0f} µs per request"
    )


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--db", default="/tmp/cmio-search-bench/store.db")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--http", type=int, default=0, help="wrk connections (0: no HTTP run)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of the HTTP run")
    parser.add_argument("--workers", type=int, default=2, help="server processes (HTTP run)")
    parser.add_argument("--port", type=int, default=0, help="server port (HTTP run; 0: a free one)")
    parser.add_argument(
        "--no-audit", action="store_true", help="HTTP run with CMIO_AUDIT=off (no audit events)"
    )
    parser.add_argument("--everything", action="store_true", help="time Patient/$everything")
    parser.add_argument(
        "--types", action="store_true", help="also the further parameter types (more_queries)"
    )
    parser.add_argument("--no-plans", action="store_true", help="do not print query plans")
    parser.add_argument(
        "--compile", action="store_true", help="only time compiling each query (no searches)"
    )
    args = parser.parse_args()
    db = Path(args.db)
    data = db.parent / f"synth-{args.patients}"
    model = load_model()
    fresh = not db.exists()
    repo = SqliteRepository(db, indexer=SearchIndexer(model))
    if fresh:
        if not data.exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cmio.cli.main",
                    "synth",
                    "--out",
                    str(data),
                    "--patients",
                    str(args.patients),
                    "--workers",
                    "2",
                ],
                check=True,
            )
        t0 = time.perf_counter()
        summary = import_paths(repo, sorted(data.glob("*.ndjson")), model=model)
        dt = time.perf_counter() - t0
        print(f"imported {summary} in {dt:.1f} s")
    total = repo._connection().execute("SELECT COUNT(*) FROM resource").fetchone()[0]
    print(f"store: {total} resources")
    values = _pick(repo)
    picked = queries(values) + (more_queries(values) if args.types else [])
    if args.compile:
        compile_times(repo, picked, args.repeat)
        repo.close()
        return
    run(repo, picked, args.repeat, plans=not args.no_plans)
    if args.everything:
        everything(repo, args.repeat)
    repo.close()
    if args.http:
        http(
            db,
            queries(values),
            args.http,
            args.duration,
            not args.no_audit,
            args.workers,
            args.port,
        )


if __name__ == "__main__":
    main()
