"""How fast the HL7 engine's store keeps up: ORU^R01 drain rate, receipt-to-queryable at paced rates.

Run: ``python -m bench.hl7_drain [--rates 20,100] [--seconds 5] [--backlog 300]
[--sustained 0.8] [--old-src DIR] [--src DIR]``

Each step starts a fresh engine (``bench.hl7``'s ``cmio+store`` server: journal, processing
into a fresh SQLite FHIR store, validation off) in a child process:

* ``drain``: ``--backlog`` ORU^R01 (10 OBX each, different patients) sent at once; the
  store's rate is messages processed per second from the first receipt to the last store
  commit, and the server's CPU time (all its threads, from ``/proc``) per message;
* ``paced R``: ORU^R01 at ``R`` messages/s for 2 x ``--seconds``; receipt-to-queryable
  (``processed_at - received_at`` in the journal: ``processed_at`` is when the store commit
  returned) p50/p95 over the second half. ``--sustained F`` adds a paced step at ``F`` times
  the drain rate just measured (the highest rate the store sustains, with some headroom).

With ``--old-src`` (e.g. a ``git worktree`` of an earlier commit's ``src``) every step runs
that tree's engine and this tree's, alternated, and both are printed side by side;
``--also-no-worker`` adds this tree without its preparation worker (``this-1``), and
``--worker-after N`` sets when this tree starts it (``-1``: never; ``--old-worker-after``
for the old tree, by default the same). The server CPU counts the worker process too.
``--gc-stats`` prints the engine's garbage collections and longest pause during each drain.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.hl7 import oru, paced_latency, stored_latency

from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame

_ROOT = Path(__file__).resolve().parents[1]


def start(
    src: str, journal: str, store: str, after: int, gc_file: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    """The engine of the tree at ``src`` with processing into ``store``; its port.

    ``after``: start the preparation worker once this many messages wait (-1: never).
    ``gc_file``: where the engine writes its GC counts when terminated (``bench.hl7.gc_stats``).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, str(_ROOT)]))
    env["CMIO_BENCH_WORKER_AFTER"] = str(after)
    if gc_file:
        env["CMIO_BENCH_GC_STATS"] = gc_file
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.hl7", "--serve", "cmio", journal, store],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=_ROOT,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) and its live children (the
    engine's preparation worker)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # (exited)
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            total += sum(cpu_seconds(int(c)) for c in task.read_text().split())
    return total


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process."""
    out: dict[int, float] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK"
            )
    return out


def drain(
    src: str, tmp: str, backlog: int, after: int, gc_file: str | None = None
) -> tuple[float, float, float]:
    """Messages/s the store applies from a backlog, server CPU ms per message (worker
    process included), and the busiest server thread's (the store writer's) ms per message.
    ``gc_file``: the engine's GC collections and pauses during the drain are written there."""
    journal = tempfile.mktemp(dir=tmp, suffix=".db")
    proc, port = start(src, journal, tempfile.mktemp(dir=tmp, suffix=".db"), after, gc_file)
    try:
        if gc_file:  # count from here (the start-up's collections left out)
            time.sleep(0.5)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
        cpu = cpu_seconds(proc.pid)
        threads = thread_cpu(proc.pid)
        since = time.time()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"".join(frame(oru(f"SAT{i}", 1000 + i)) for i in range(backlog)))
            decoder, got = FrameDecoder(1 << 20), 0
            while got < backlog:
                got += len(decoder.feed(sock.recv(65536)))
        deadline, n, last = time.time() + 1800, 0, since
        while time.time() < deadline:
            _, _, n, last = stored_latency(journal, since)
            if n >= backlog:
                break
            time.sleep(0.2)
        used = cpu_seconds(proc.pid) - cpu
        after_threads = thread_cpu(proc.pid)
        writer = max(t - threads.get(tid, 0.0) for tid, t in after_threads.items())
        return n / max(last - since, 1e-9), used * 1000 / max(n, 1), writer * 1000 / max(n, 1)
    finally:
        proc.terminate()
        proc.wait(30)


def paced(src: str, tmp: str, rate: float, seconds: float, after: int) -> tuple[float, float, int]:
    """Receipt-to-queryable p50, p95 (ms) and messages measured at ``rate`` ORU/s."""
    journal = tempfile.mktemp(dir=tmp, suffix=".db")
    proc, port = start(src, journal, tempfile.mktemp(dir=tmp, suffix=".db"), after)
    try:
        return paced_latency(port, journal, oru, rate, seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="20,100", help="paced ORU/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--sustained", type=float, default=0.8, help="0: no such step")
    parser.add_argument("--old-src", help="the src directory of the tree to compare with")
    parser.add_argument("--src", default=str(_ROOT / "src"), help="this tree's src directory")
    parser.add_argument(
        "--worker-after",
        type=int,
        default=16,
        help="start the engine's preparation worker once this many messages wait (-1: never)",
    )
    parser.add_argument(
        "--old-worker-after",
        type=int,
        default=None,
        help="the same for the --old-src tree (default: as --worker-after; -1 before session 9)",
    )
    parser.add_argument(
        "--also-no-worker", action="store_true", help="also run this tree without the worker"
    )
    parser.add_argument("--drain-rounds", type=int, default=1, help="drains per tree (median)")
    parser.add_argument(
        "--gc-stats", action="store_true", help="the engine's GC collections during each drain"
    )
    args = parser.parse_args()
    trees = [("this", args.src, args.worker_after)]
    if args.also_no_worker:
        trees.insert(0, ("this-1", args.src, -1))  # this tree without the worker
    if args.old_src:
        old_after = args.worker_after if args.old_worker_after is None else args.old_worker_after
        trees.insert(0, ("old", args.old_src, old_after))
    tmp = tempfile.mkdtemp(prefix="cmio-hl7-drain-")
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in trees}
    for _ in range(args.drain_rounds):
        for name, src, after in trees:
            gc_file = os.path.join(tmp, "gc.txt") if args.gc_stats else None
            rate, cpu, writer = drain(src, tmp, args.backlog, after, gc_file)
            runs[name].append((rate, cpu, writer))
            print(f"{name:6} drain: {rate:7.1f} ORU/s, server CPU {cpu:6.2f} ms per message"
                  f" (the writer thread {writer:6.2f} ms), load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
            if gc_file and os.path.exists(gc_file):
                young, middle, full, total, longest = Path(gc_file).read_text().split()
                print(f"{name:6} GC during the drain: collections {young}/{middle}/{full}"
                      f" (young/middle/full), {float(total):.0f} ms in all,"
                      f" longest pause {float(longest):.0f} ms", flush=True)  # fmt: skip
                os.remove(gc_file)
    drained: dict[str, float] = {}
    for name, got in runs.items():
        rate, cpu, writer = (statistics.median(x) for x in zip(*got, strict=True))
        drained[name] = rate
        if args.drain_rounds > 1:
            print(f"{name:6} drain, median of {len(got)}: {rate:7.1f} ORU/s, server CPU"
                  f" {cpu:6.2f} ms, writer thread {writer:6.2f} ms per message")  # fmt: skip
    steps = [(float(r), "") for r in args.rates.split(",") if r.strip()]
    for rate, _ in steps + ([(0.0, "sustained")] if args.sustained > 0 else []):
        for name, src, after in trees:
            at = rate or round(args.sustained * drained[name], 1)
            p50, p95, n = paced(src, tmp, at, args.seconds, after)
            print(f"{name:6} paced {at:6.1f} ORU/s: receipt to queryable p50 {p50:8.1f} ms,"
                  f" p95 {p95:8.1f} ms ({n} messages, load {os.getloadavg()[0]:.1f})",
                  flush=True)  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)  # (each step's journal and store: ~60 MB)


if __name__ == "__main__":
    main()
