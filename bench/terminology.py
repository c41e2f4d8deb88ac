"""Terminology operations: $validate-code (HTTP and in process) and $expand speed.

* ``$validate-code`` over HTTP: ``cmio serve`` driven by wrk with
  ``GET /fhir/ValueSet/$validate-code?url=...&system=...&code=...`` (codes rotate),
  side by side with the project's baseline ASGI app reading one SQLite row.
* ``$validate-code`` through the ASGI app in process (no sockets, no uvicorn): the same
  GET as the HTTP run through hardening, routing, parameter parsing, the provider and
  the Parameters JSON, as requests per CPU-second (steadier than wall time on a shared
  machine) and per wall-second.
* ``$validate-code`` in process: the membership check FHIRPath, validation and
  search call (:class:`cmio.terminology.providers.ServiceTerminology`) and the full
  Parameters answer (:func:`cmio.terminology.validatecode.validate_code`), next to
  a bare ``set`` membership loop as baseline.
* ``$expand`` of ICD-10-CM descendants of E11 (``icd-10-cm?fhir_vs=isa/E11``), cold
  (a fresh service each time), from the concept store.
* intensional is-a ``$expand`` (first page of 100) on a 350,000-concept SNOMED-shaped
  hierarchy, a different concept each request (no expansion cache hits).

The concept store must hold ICD-10-CM and the synthetic SNOMED release
(``cmio terminology load icd10cm`` and ``bench/terminology_load.py``, or this
script's ``--prepare``).

    python bench/terminology.py --db DIR/terminology.db [--prepare] [--duration 10] [--runs 3]
    PYTHONPATH=OLD/src python bench/terminology.py --db ... --http-only --no-baseline  # old code
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import (  # noqa: E402
    baseline_command,
    free_port,
    median_run,
    running,
    tree_cpu,
    wrk,
)

from cmio.terminology.concepts import ConceptStore  # noqa: E402
from cmio.terminology.expansion import ExpandOptions  # noqa: E402
from cmio.terminology.factory import open_terminology  # noqa: E402
from cmio.terminology.providers import ServiceTerminology  # noqa: E402
from cmio.terminology.resources import TerminologyResources  # noqa: E402
from cmio.terminology.service import ExpandRequest, TerminologyService  # noqa: E402
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code  # noqa: E402

VS = "http://hl7.org/fhir/ValueSet/observation-status"
CS = "http://hl7.org/fhir/observation-status"
CODES = ["registered", "preliminary", "final", "amended", "corrected", "cancelled", "nope"]
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"

LUA = r"""
codes = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/fhir/ValueSet/$validate-code?url=%s&system=%s&code=" .. codes[(counter %% #codes) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%f %%f %%f %%d %%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def rate(fn: Callable[[], object], n: int, runs: int = 5) -> float:
    """Median calls per second of ``fn`` over ``runs`` rounds of ``n`` calls."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def in_process(service: TerminologyService) -> list[str]:
    provider = ServiceTerminology(service)
    pairs = [(CS, c) for c in CODES]
    members = {(CS, c) for c in CODES[:-1]}
    it = iter(range(10**12))

    def baseline() -> object:
        return pairs[next(it) % 7] in members

    def check() -> object:
        system, code = pairs[next(it) % 7]
        return provider.validate_code(VS, system, code)

    valueset = service.find_valueset(VS)

    def full() -> object:
        system, code = pairs[next(it) % 7]
        return validate_code(service, ValidateRequest([CodingInput(system, code)], valueset))

    check()
    full()
    rows = []
    base = rate(baseline, 200_000)
    for name, fn, n in (
        ("membership (FHIRPath/validation/search)", check, 200_000),
        ("full Parameters answer", full, 20_000),
    ):
        got = rate(fn, n)
        rows.append(
            f"| in process | $validate-code {name} | {got:,.0f}/s | baseline set lookup {base:,.0f}/s | {got / base:.2f} |"
        )
    return rows


def timed_expand(store: ConceptStore, url: str, count: int | None) -> float:
    """One uncached expansion: a fresh service (no expansion or concept cache) over the store."""
    service = TerminologyService(TerminologyResources(concepts=store), max_expansion=100_000)
    start = time.perf_counter()
    out = service.expand(ExpandRequest(url=url, count=count, options=ExpandOptions()))
    elapsed = time.perf_counter() - start
    assert out["expansion"]["total"] > 0
    return elapsed


def expand_rows(db: Path) -> list[str]:
    rows = []
    url = f"{ICD}?fhir_vs=isa/E11"
    service = open_terminology(None, db, core=False, max_expansion=100_000)
    store = service.resources.concepts
    assert store is not None
    timed_expand(store, url, None)
    times = [timed_expand(store, url, None) for _ in range(15)]
    total = service.expand(ExpandRequest(url=url))["expansion"]["total"]
    rows.append(
        f"| in process, cold | $expand ICD-10-CM is-a E11 ({total} codes, all) | "
        f"median {statistics.median(times) * 1000:.1f} ms | p95 {sorted(times)[13] * 1000:.1f} ms | |"
    )
    rng = random.Random(1)
    sample = [c.code for c in store.iter_concepts(SCT, count=20_000)]
    parents = [c for c in rng.sample(sample, 2_000) if store.children(SCT, c)][:600]
    rounds = []
    for start in range(0, 600, 200):
        chunk = parents[start : start + 200]
        began = time.perf_counter()
        sizes = []
        for code in chunk:
            out = service.expand(ExpandRequest(url=f"{SCT}?fhir_vs=isa/{code}", count=100))
            sizes.append(out["expansion"]["total"])
        rounds.append(len(chunk) / (time.perf_counter() - began))
    rows.append(
        f"| in process, no cache hits | $expand SNOMED-shaped 350k is-a (first 100; median total "
        f"{statistics.median(sizes):.0f}) | {statistics.median(rounds):,.0f} req/s | | |"
    )
    service.close()
    return rows


def settle(pid: int, quiet: float = 0.05, limit: float = 120.0) -> None:
    """Wait until the server tree uses under ``quiet`` CPU seconds in half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        began = tree_cpu(pid)
        time.sleep(0.5)
        if tree_cpu(pid) - began < quiet:
            return


@contextmanager
def serving(cmd: list[str], health: str, env: dict[str, str]) -> Iterator[int]:
    """Run a server until the block ends, every worker up; yields its process id."""
    with running(cmd, health, env) as proc:
        settle(proc.pid)  # every worker up (the health check needs one)
        yield proc.pid


def drive(url: str, script: Path, pid: int, c: int, duration: int, runs: int) -> str:
    """wrk ``runs`` times: medians of requests/s, p50, p95, the server's CPU per request."""
    wrk(url, script, 16, 2)  # warm-up: every worker's caches and first look-ups
    rps, p50, p95, errors, cpu_us = median_run(url, script, c, duration, runs, pid)
    return f"{c} | {rps:,.0f} | {p50:.2f} | {p95:.2f} | {cpu_us:,.0f} | {errors}"


def http_rows(db: Path, duration: int, runs: int, workers: int, baseline: bool = True) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "cmio.cli.main",
            "serve",
            "--no-auth",  # loopback benchmark
            "--port",
            str(port),
            "--database",
            f"sqlite:///{work}/cmio.db",
            "--workers",
            str(workers),
        ]
        env = {"CMIO_TERMINOLOGY_DB": str(db), "CMIO_VALIDATION": "off"}
        script = work / "vc.lua"
        script.write_text(LUA % (",".join(f'"{c}"' for c in CODES), VS, CS))
        with serving(cmd, f"{url}/health", env) as pid:
            for c in (2, 16):
                got = drive(url, script, pid, c, duration, runs)
                rows.append(f"| HTTP, {workers} workers | $validate-code GET | {got} |")
        if not baseline:
            return rows
        from bench.baseline_app import prepare

        base_db = work / "baseline.db"
        prepare(str(base_db), [("k", b'{"resourceType":"Parameters"}')])
        port = free_port()
        cmd = baseline_command(port, workers)
        base_script = work / "base.lua"
        base_script.write_text(
            'request = function() return wrk.format("GET", "/kv/k") end\n'
            + LUA.split("end\n", 1)[1].replace("%%", "%")
        )
        base_env = {"BASELINE_DB": str(base_db), "PYTHONPATH": str(ROOT)}
        with serving(cmd, f"http://127.0.0.1:{port}/x", base_env) as pid:
            for c in (2, 16):
                got = drive(f"http://127.0.0.1:{port}", base_script, pid, c, duration, runs)
                rows.append(
                    f"| baseline (1 SQLite row, raw ASGI), {workers} workers | read | {got} |"
                )
    return rows


def asgi_rows(db: Path, requests: int = 5_000, rounds: int = 5) -> list[str]:
    """``$validate-code`` GETs through the whole ASGI app, called in process."""
    import asyncio

    from cmio.api.app import create_app
    from cmio.api.env import Settings

    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        sent.append(message)

    def scope(code: str) -> dict[str, object]:
        return {
            "type": "http",
            "method": "GET",
            "path": "/fhir/ValueSet/$validate-code",
            "raw_path": b"/fhir/ValueSet/$validate-code",
            "query_string": f"url={VS}&system={CS}&code={code}".encode(),
            "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 5000),
            "root_path": "",
            "asgi": {"version": "3.0"},
        }

    scopes = [scope(c) for c in CODES]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(validation="off", terminology_db=str(db))
        app = create_app(f"sqlite:///{tmp}/cmio.db", settings)

        async def run(n: int) -> None:
            for i in range(n):
                await app(scopes[i % len(scopes)], receive, send)
                sent.clear()

        async def measure() -> tuple[float, float]:
            await run(500)
            cpu, wall = [], []
            for _ in range(rounds):
                began, began_cpu = time.perf_counter(), time.process_time()
                await run(requests)
                wall.append(requests / (time.perf_counter() - began))
                cpu.append(requests / (time.process_time() - began_cpu))
            return statistics.median(cpu), statistics.median(wall)

        cpu, wall = asyncio.run(measure())
        app.close()
    return [
        f"| ASGI app in process | $validate-code GET (hardening, router, Parameters JSON) | "
        f"{cpu:,.0f}/CPU-s, {wall:,.0f}/s wall | | |"
    ]


def prepare(db: Path) -> None:
    from cmio.terminology.concepts import ConceptStore
    from cmio.terminology.loaders.icd10cm import load_icd10cm
    from cmio.terminology.loaders.snomed import load_snomed
    from cmio.terminology.loaders.synthetic import write_synthetic_release

    store = ConceptStore(db)
    load_icd10cm(store)
    release = db.parent / "rf2"
    if not release.exists():
        write_synthetic_release(release)
    load_snomed(store, release)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--http-only",
        action="store_true",
        help="only the HTTP $validate-code runs (e.g. old and new code alternating, by PYTHONPATH)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw-ASGI baseline")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.db)
    if args.http_only:
        print_http(args)
        return
    service = open_terminology(None, args.db)
    rows = in_process(service)
    service.close()
    rows += asgi_rows(args.db)
    rows += expand_rows(args.db)
    print(f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    print("| where | what | rate / time | baseline | ratio |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    if not args.skip_http:
        print_http(args)


def print_http(args: argparse.Namespace) -> None:
    rows = http_rows(args.db, args.duration, args.runs, args.workers, not args.no_baseline)
    print(
        f"\nwrk -t2, {args.duration}s x {args.runs} runs (median), load {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| server | interaction | connections | requests/s | p50 ms | p95 ms "
        "| server CPU us/request | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
