"""The HL7 v2 engine's receipt path alone: messages per journal commit and CPU per message.

Run: ``python -m bench.hl7_receipt [--rounds 3] [--seconds 6] [--window 16] [--old-src DIR]``
and ``python -m bench.hl7_receipt --steps [--rounds 2] [--old-src DIR]`` (CPU per step).

Each round starts the engine with processing off (MLLP, receipt checks, journal with group
commit, ACK) in a child process and drives it with 4 MLLP senders from this process, each
keeping ``--window`` ORU^R01 (10 OBX) in flight (``bench.hl7``'s senders). The child reports
what the throughput figures of ``bench.hl7`` hide on a loaded machine: how many messages
share one journal commit (one fsync) and the server's CPU time per message (user + system,
all threads, and split by thread: the event loop and the journal writer), and the CPU
time the senders themselves take (this process: they share the machine's cores). With ``--old-src`` each round runs that tree's ``cmio`` (e.g. a ``git
worktree`` of an earlier commit) right before this one, for side-by-side figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.hl7 import drive, oru

HERE = Path(__file__).resolve().parents[1]


def serve(journal: str, seconds: float) -> None:
    """The receipt path for ``seconds``; prints the port, then its figures as JSON."""
    from cmio.interfaces.hl7v2.engine.channels import parse_channel
    from cmio.interfaces.hl7v2.engine.runtime import Engine
    from cmio.interfaces.hl7v2.mapping import SUPPORTED

    config = parse_channel({"name": "bench", "journal": journal, "source": {"port": 0}})
    engine = Engine([config], None, supported_types=frozenset(SUPPORTED), process=False)
    engine.start()
    before = resource.getrusage(resource.RUSAGE_SELF)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await engine.run(stop, ports={"bench": 0}, ready=lambda p: print(p["bench"], flush=True))

    threads_before = thread_cpu()
    asyncio.run(main())
    after = resource.getrusage(resource.RUSAGE_SELF)
    threads = {k: v - threads_before.get(k, 0.0) for k, v in thread_cpu().items()}
    rows = engine.journal.rows()
    engine.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"messages": len(rows), "commits": engine.journal.commits, "cpu": cpu,
                      "loop": threads.get("loop", 0.0),
                      "journal": threads.get("cmio-hl7-journal", 0.0)}))  # fmt: skip


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process by name (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    main = os.getpid()
    for task in Path(f"/proc/{main}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = "loop" if int(task.name) == main else names.get(int(task.name), "other")
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def steps() -> None:
    """CPU µs per ORU^R01 of each receipt step in this process (best of 9 runs of 2,000)."""
    from cmio.interfaces.hl7v2.engine.ack import read_header
    from cmio.interfaces.hl7v2.engine.channels import parse_channel
    from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame
    from cmio.interfaces.hl7v2.engine.server import Channel
    from cmio.interfaces.hl7v2.mapping import SUPPORTED
    from cmio.interfaces.hl7v2.parser import parse

    raw = oru("C123", 42)
    config = parse_channel({"name": "bench", "journal": ":memory:", "source": {"port": 0}})
    channel = Channel(config, None, frozenset(SUPPORTED))  # type: ignore[arg-type]
    header = read_header(raw)
    stream = b"".join(frame(oru(f"C{i}", i)) for i in range(40))
    timed: dict[str, tuple[Any, int]] = {
        "read MSH": (lambda: read_header(raw), 1),
        "parse": (lambda: parse(raw), 1),
        "receipt checks (MSH, parse, policy, patient key)": (lambda: channel.check(raw), 1),
        "ACK": (lambda: channel.answer(header, "AA", None), 1),
        "MLLP decoding (40 frames a read)": (lambda: list(FrameDecoder(1 << 20).feed(stream)), 40),
    }
    for name, (step, per) in timed.items():
        best = float("inf")
        for _ in range(9):
            started = time.process_time()
            for _ in range(2000 // per):
                step()
            best = min(best, (time.process_time() - started) / (2000 // per * per))
        print(f"  {name}: {best * 1e6:.1f} µs")


def run_once(journal: str, seconds: float, window: int, src: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:  # that tree's cmio, this tree's bench package
        env["PYTHONPATH"] = os.pathsep.join([src, str(HERE)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.hl7_receipt", "--serve", journal, str(seconds)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=HERE,
    )  # fmt: skip
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    before = resource.getrusage(resource.RUSAGE_SELF)
    sent = drive(port, oru, Path(journal).stem, 4, seconds - 1.5, window)
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures = json.loads(proc.stdout.readline())
    proc.wait(60)
    messages = max(1, figures["messages"])
    senders = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": sent["rate"],
        "per_commit": figures["messages"] / max(1, figures["commits"]),
        "cpu_us": figures["cpu"] * 1e6 / messages,
        "loop_us": figures.get("loop", 0.0) * 1e6 / messages,
        "journal_us": figures.get("journal", 0.0) * 1e6 / messages,
        "sender_us": senders * 1e6 / messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--old-src", help="another tree's src directory, run side by side")
    parser.add_argument("--steps", action="store_true", help="CPU per receipt step instead")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--steps-here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], float(args.serve[1]))
        return
    if args.steps_here:
        steps()
        return
    if args.steps:  # each tree in its own process, alternated
        for r in range(args.rounds):
            for name, src in ([("old", args.old_src)] if args.old_src else []) + [("this", None)]:
                env = dict(os.environ)
                if src is not None:
                    env["PYTHONPATH"] = os.pathsep.join([src, str(HERE)])
                print(f"round {r} {name}:", flush=True)
                subprocess.run([sys.executable, "-m", "bench.hl7_receipt", "--steps-here"],
                               env=env, cwd=HERE, check=True)  # fmt: skip
        return
    tmp = tempfile.mkdtemp(prefix="cmio-hl7-receipt-")
    trees = [("old", args.old_src)] if args.old_src else []
    trees.append(("this", None))
    results: dict[str, list[dict[str, float]]] = {}
    for r in range(args.rounds):
        for name, src in trees:
            got = run_once(os.path.join(tmp, f"{name}{r}.db"), args.seconds, args.window, src)
            results.setdefault(name, []).append(got)
            print(f"round {r} {name:4}: {line(got)} (load {os.getloadavg()[0]:.1f})", flush=True)
    for name, runs in results.items():
        med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        print(f"median {name:4}: {line(med)}")


def line(got: dict[str, float]) -> str:
    """One result as text."""
    return (f"{got['rate']:7,.0f} msg/s, {got['per_commit']:5.1f} messages per commit,"
            f" {got['cpu_us']:4.0f} µs server CPU per message (event loop {got['loop_us']:.0f},"
            f" journal {got['journal_us']:.0f}); senders {got['sender_us']:.0f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
