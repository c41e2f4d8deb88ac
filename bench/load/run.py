"""Load test: cmio under a mixed clinical workload on SQLite or PostgreSQL (issue 13, item 1).

Makes a fresh store (a throwaway PostgreSQL with ``--backend postgres``), seeds it
with synthetic patients (``cmio synth`` + ``cmio import``), starts ``cmio serve
--workers W`` and ``cmio hl7 listen`` on loopback, then drives them for
``--duration`` seconds with ``--clients`` concurrent HTTP clients, an HL7 v2 MLLP
feed at ``--hl7-rate`` messages/s and a dashboard user (``GET /`` and
``/interfaces/health``). Prints per interaction: count, errors, requests/s,
p50/p95/p99 latency, next to the targets of the earlier issues, and checks that every
acknowledged write is stored exactly once. Exits 1 on any error or mismatch.

    python -m bench.load.run --backend sqlite --clients 50 --duration 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from bench.load.driver import Stats, count_written, lost_writes, run_load
from bench.load.workload import load_seed

__all__ = ["TARGETS", "main", "report"]

TARGETS: dict[str, str] = {
    "read": "10,000/s alone, p95 <= 5 ms (issue 2)",
    "search-name": "p95 <= 20 ms; 2,000 searches/s at 16 clients (issue 4)",
    "search-identifier": "p95 <= 20 ms (issue 4)",
    "search-observation": "p95 <= 20 ms (issue 4)",
    "everything": "p50 <= 10 ms (issue 4)",
    "create": "3,000/s alone (issue 2)",
    "update": "3,000/s alone (issue 2)",
    "transaction": "-",
    "hl7-mllp": "3,000 msg/s (4 senders); stored p95 <= 50 ms (issue 8)",
    "dashboard": "-",
    "interfaces-health": "-",
    "reads + searches": "10,000 reads/s, 2,000 searches/s (issues 2, 4)",
    "creates + updates": "3,000/s (issue 2)",
}
"""What the earlier issues asked of each interaction, measured alone."""

_READS = ("read", "search-name", "search-identifier", "search-observation", "everything")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cmio(*args: str) -> list[str]:
    return [sys.executable, "-m", "cmio.cli.main", *args]


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"HL7 engine exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.3)
    raise RuntimeError(f"MLLP port {port} did not open")


@contextlib.contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'cmio.db'}"
        return
    from cmio.testing.pg import running_postgres

    with running_postgres() as url:
        yield url


def report(stats: Stats, *, title: str) -> str:
    """A markdown table: per interaction count, errors, rate and latencies, with the targets."""
    summary = stats.summary()
    lines = [
        title,
        "",
        "| interaction | count | errors | req/s | p50 ms | p95 ms | p99 ms | target (earlier issue) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['count']:,.0f} | {row['errors']:.0f} | {row['rate']:,.1f} "
            f"| {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {TARGETS.get(name, '-')} |"
        )
    for label, names in (("reads + searches", _READS), ("creates + updates", ("create", "update"))):
        merged = Stats(elapsed=stats.elapsed)
        for name in names:
            merged.latencies.setdefault(label, []).extend(stats.latencies.get(name, []))
            merged.errors[label] = merged.errors.get(label, 0) + stats.errors.get(name, 0)
        row = merged.summary().get(label)
        if row:
            lines.append(
                f"| **{label}** | {row['count']:,.0f} | {row['errors']:.0f} | {row['rate']:,.1f} "
                f"| {row['p50']:.1f} | {row['p95']:.1f} | {row['p99']:.1f} | {TARGETS[label]} |"
            )
    total = sum(len(v) for v in stats.latencies.values())
    lines += ["", f"{total:,} requests in {stats.elapsed:.0f} s, {stats.total_errors()} errors."]
    for name, sample in stats.samples.items():
        lines.append(f"first error of {name}: {sample}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the load test; 0 when no request failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds")
    parser.add_argument("--workers", type=int, default=2, help="cmio serve --workers")
    parser.add_argument("--patients", type=int, default=1000, help="synthetic patients seeded")
    parser.add_argument("--hl7-rate", type=float, default=20.0, help="HL7 messages/s (0: none)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cmio-load-"))
    try:
        with _database(args.backend, tmp) as url:
            return _run(args, tmp, url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, url: str) -> int:
    from rich.progress import Progress

    data = tmp / "synth"
    started = time.perf_counter()
    subprocess.run(
        _cmio("synth", "--out", str(data), "--patients", str(args.patients), "--years", "1"),
        check=True,
        capture_output=True,
    )
    for bulky in ("AuditEvent.ndjson", "audit-log.csv"):  # the server audits the load itself
        (data / bulky).unlink(missing_ok=True)
    subprocess.run(
        _cmio("import", str(data), "--database", url, "--report", str(tmp / "rejected.ndjson")),
        check=True,
        capture_output=True,
    )
    print(f"seeded {args.patients} patients in {time.perf_counter() - started:.0f} s", flush=True)
    seed = load_seed(data)
    journal = tmp / "hl7" / "journal.db"
    journal.parent.mkdir()
    channel = tmp / "load.yaml"
    channel.write_text(f"name: load\njournal: {journal}\nsource:\n  type: mllp\n")
    port, mllp = _free_port(), _free_port()
    env = {"CMIO_HL7_JOURNAL": str(journal), "CMIO_EXPORT_DIR": str(tmp / "exports")}
    serve = _cmio(
        "serve", "--no-auth", "--port", str(port), "--database", url,
        "--workers", str(args.workers),
    )  # fmt: skip
    listen = _cmio("hl7", "listen", "--channel", str(channel), "--port", str(mllp))
    listen += ["--database", url]
    with (
        _process(serve, env, tmp / "serve.log") as server,
        _process(listen, env, tmp / "hl7.log") as engine,
    ):
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/health", server, tmp / "serve.log")
        if args.hl7_rate > 0:
            _wait_port(mllp, engine, tmp / "hl7.log")
        before = count_written(base)
        with Progress() as bar:
            task = bar.add_task(f"load ({args.backend})", total=1.0)
            stats = asyncio.run(
                run_load(
                    base,
                    seed,
                    clients=args.clients,
                    duration=args.duration,
                    hl7_port=mllp if args.hl7_rate > 0 else None,
                    hl7_rate=args.hl7_rate or 1.0,
                    progress=lambda done: bar.update(task, completed=done),
                )
            )
        lost = lost_writes(before, count_written(base), stats)  # each ack stored once
    title = (
        f"backend={args.backend}, workers={args.workers}, clients={args.clients}, "
        f"duration={args.duration:.0f} s, patients={args.patients}, hl7 {args.hl7_rate}/s, "
        f"{os.cpu_count()} cores"
    )
    print(report(stats, title=title))
    print("every acknowledged write stored exactly once" if not lost else "\n".join(lost))
    if stats.total_errors():  # the servers' own account of what went wrong
        for log in ("serve.log", "hl7.log"):
            tail = (tmp / log).read_text(errors="replace").splitlines()[-40:]
            print(f"\n--- last lines of {log}\n" + "\n".join(tail))
    if args.json:
        args.json.write_text(json.dumps({"title": title, "summary": stats.summary()}, indent=1))
    return 1 if stats.total_errors() or lost else 0


if __name__ == "__main__":
    sys.exit(main())
