"""HTTP throughput and latency of the FHIR API under wrk (read, create, update).

Starts ``cmio serve`` in a separate process on a fresh store, seeds patients,
then drives it with wrk at several concurrencies, side by side with a baseline
minimal ASGI app reading one SQLite row by key. Prints a markdown table of
requests/s and p50/p95 latency (median of --runs runs).

    python bench/http_bench.py [--backend sqlite|postgres] [--workers 2] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LUA_COMMON = r"""
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def lua_read(ids: list[str], prefix: str) -> str:
    items = ",".join(f'"{i}"' for i in ids)
    return (
        f"""ids = {{{items}}}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "{prefix}" .. ids[(counter % #ids) + 1])
end
"""
        + LUA_COMMON
    )


def lua_write(method: str, ids: list[str]) -> str:
    items = ",".join(f'"{i}"' for i in ids)
    return (
        f"""ids = {{{items}}}
counter = 0
request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  local body
  if "{method}" == "POST" then
    body = '{{"resourceType":"Patient","name":[{{"family":"Bench","given":["W"]}}],"birthDate":"1980-01-0' .. (counter % 9 + 1) .. '"}}'
    return wrk.format("POST", "/fhir/Patient", {{["Content-Type"]="application/fhir+json"}}, body)
  end
  body = '{{"resourceType":"Patient","id":"' .. id .. '","name":[{{"family":"Bench","given":["U"]}}],"birthDate":"1980-01-0' .. (counter % 9 + 1) .. '"}}'
  return wrk.format("PUT", "/fhir/Patient/" .. id, {{["Content-Type"]="application/fhir+json"}}, body)
end
"""
        + LUA_COMMON
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def running(
    cmd: list[str], health: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_up(health, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def baseline_command(port: int, workers: int) -> list[str]:
    """The uvicorn command serving the minimal one-row-read baseline app."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.baseline_app:make_app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def wrk(url: str, script: Path, connections: int, duration: int) -> tuple[float, float, float, int]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", out)
    assert match, out
    rps, p50, p95, bad_status, socket_errors = match.groups()
    return float(rps), float(p50), float(p95), int(bad_status) + int(socket_errors)


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants
    (Linux ``/proc``; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def seed(base: str, n: int) -> list[str]:
    ids = [f"bench-{uuid.uuid4().hex[:16]}" for _ in range(n)]
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": i,
                "name": [{"family": "Seed"}],
                "birthDate": "1970-01-01",
            },
            "request": {"method": "PUT", "url": f"Patient/{i}"},
        }
        for i in ids
    ]
    for start in range(0, n, 250):
        r = httpx.post(
            base,
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": entries[start : start + 250],
            },
            headers={"content-type": "application/fhir+json"},
            timeout=120,
        )
        r.raise_for_status()
    return ids


def median_run(
    url: str, script: Path, c: int, duration: int, runs: int, pid: int
) -> tuple[float, float, float, int, float]:
    """Medians of ``runs`` wrk runs: requests/s, p50, p95 (ms), errors (summed), and the
    server's CPU µs per request (its process tree, from /proc)."""
    results = []
    for _ in range(runs):
        before = tree_cpu(pid)
        rps, p50, p95, errors = wrk(url, script, c, duration)
        cpu = (tree_cpu(pid) - before) / max(rps * duration, 1) * 1e6
        results.append((rps, p50, p95, errors, cpu))
    return (
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        statistics.median(r[2] for r in results),
        sum(r[3] for r in results),
        statistics.median(r[4] for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", default="8,16,32")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument(
        "--interactions", default="read,create,update", help="which of read,create,update to run"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the raw-ASGI baseline")
    parser.add_argument(
        "--port", type=int, default=0, help="the server's port (0: any free one); baseline: +1"
    )
    parser.add_argument(
        "--serve-args",
        default="",
        help='more cmio serve options, e.g. "--http auto" or "--loop asyncio"',
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    conns = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="cmio-bench-"))
    rows: list[str] = []
    with contextmanager(_database)(args.backend, tmp) as db_url:
        port = args.port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "cmio.cli.main",
            "serve",
            "--no-auth",  # loopback; the baseline servers have no authentication either
            "--port",
            str(port),
            "--database",
            db_url,
            "--workers",
            str(args.workers),
            *args.serve_args.split(),
        ]
        url = f"http://127.0.0.1:{port}"
        with running(cmd, f"{url}/health") as server:
            ids = seed(f"{url}/fhir", args.patients)
            sample = httpx.get(f"{url}/fhir/Patient/{ids[0]}").content
            scripts = {
                "read": lua_read(ids, "/fhir/Patient/"),
                "create": lua_write("POST", ids),
                "update": lua_write("PUT", ids),
            }
            for name, text in scripts.items():
                (tmp / f"{name}.lua").write_text(text)
            for name in [n for n in scripts if n in args.interactions.split(",")]:
                for c in conns:
                    rps, p50, p95, errors, cpu = median_run(
                        url, tmp / f"{name}.lua", c, args.duration, args.runs, server.pid
                    )
                    rows.append(
                        f"| cmio {args.backend} | {name} | {c} | {rps:,.0f} | {p50:.2f} | {p95:.2f}"
                        f" | {errors} | {cpu:,.0f} |"
                    )
    if not args.no_baseline:
        base_db = tmp / "baseline.db"
        from bench.baseline_app import prepare

        prepare(str(base_db), [(i, sample) for i in ids])
        port = args.port + 1 if args.port else free_port()
        cmd = baseline_command(port, args.workers)
        with running(
            cmd,
            f"http://127.0.0.1:{port}/x",
            {"BASELINE_DB": str(base_db), "PYTHONPATH": str(ROOT)},
        ) as base:
            (tmp / "base.lua").write_text(lua_read(ids, "/kv/"))
            for c in conns:
                rps, p50, p95, errors, cpu = median_run(
                    f"http://127.0.0.1:{port}",
                    tmp / "base.lua",
                    c,
                    args.duration,
                    args.runs,
                    base.pid,
                )
                rows.append(
                    f"| baseline (1 SQLite row, raw ASGI) | read | {c} | {rps:,.0f} | {p50:.2f}"
                    f" | {p95:.2f} | {errors} | {cpu:,.0f} |"
                )
    print(
        f"\nworkers={args.workers}, wrk -t2, {args.duration}s x {args.runs} runs (median), {os.cpu_count()} cores\n"
    )
    print(
        "| server | interaction | connections | requests/s | p50 ms | p95 ms | errors"
        " | server CPU µs/request |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(json.dumps({"tmp": str(tmp)}))
    shutil.rmtree(tmp, ignore_errors=True)


def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'cmio.db'}"
        return
    from cmio.testing.pg import running_postgres

    with running_postgres() as url:
        yield url


if __name__ == "__main__":
    main()
