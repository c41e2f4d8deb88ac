"""HL7 v2 engine benchmark: MLLP throughput with durable ACKs, and receipt-to-stored latency.

Run: ``python -m bench.hl7 [--seconds 5] [--rounds 3] [--senders 4] [--no-shortcuts]``

Each round starts servers in child processes and drives them from this process with
``--senders`` concurrent MLLP connections:

* ``baseline``: a minimal asyncio MLLP server that appends each message to a file,
  fdatasyncs (group commit) and answers a fixed ACK: the floor any durable engine pays;
* ``cmio``: ``Engine`` with the journal (SQLite WAL, synchronous=FULL, group commit),
  parse, acceptance checks and ACKs, processing off (receipt path alone);
* ``cmio+store``: the same with processing into a SQLite FHIR store (validation off):
  the ACK rate while the store works, and how many messages per second the store keeps up.

Two sender styles: ``strict`` (each sender waits for each ACK: 4 messages in flight at
most) and ``window`` (each sender keeps 16 messages in flight, ACKs in order). ORU^R01
messages carry 10 OBX; ADT^A08 messages one patient update. Latency receipt-to-stored
is measured separately at a paced rate from the journal (``processed_at - received_at``;
the store committed before ``processed_at``). Medians over rounds; ratios cmio/baseline.
``--no-shortcuts`` runs the store sink without its identifier shortcuts (every conditional
entry searched, unchanged patients and visits rewritten): the store path of the previous
code, for side-by-side runs.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame

WINDOW = 16


def oru(control: str, patient: int) -> bytes:
    """An ORU^R01 with 10 numeric OBX."""
    head = (
        f"MSH|^~\\&|LAB|HOSP|CMIO|HOSP|20240101120000||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        f"PID|1||MRN{patient:06d}^^^HOSP^MR||DOE^JANE^Q||19800102|F|||1 MAIN ST^^TOWN^ST^12345\r"
        f"PV1|1|O|CLINIC^1^A||||1234^WELBY^MARCUS|||||||||||V{patient:08d}^^^HOSP^VN\r"
        f"ORC|RE|P{control}|F{control}\r"
        f"OBR|1|P{control}|F{control}|24323-8^Comprehensive metabolic panel^LN|||20240101110000"
        "|||||||20240101110500|BLD^Blood|1234^WELBY^MARCUS||||||20240101115900|||F\r"
    )
    tests = ("2345-7^Glucose", "2160-0^Creatinine", "3094-0^BUN", "2951-2^Sodium",
             "2823-3^Potassium", "2075-0^Chloride", "2028-9^CO2", "17861-6^Calcium",
             "2885-2^Protein", "1751-7^Albumin")  # fmt: skip
    obx = "".join(
        f"OBX|{i}|NM|{t}^LN||{4 + i}.{i}|mmol/L^mmol/L^UCUM|3.5-10.0|N|||F|||20240101115900\r"
        for i, t in enumerate(tests, 1)
    )
    return (head + obx).encode()


def adt(control: str, patient: int) -> bytes:
    """An ADT^A08 (patient update) with a visit."""
    return (
        f"MSH|^~\\&|REG|HOSP|CMIO|HOSP|20240101120000||ADT^A08^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|A08|20240101120000\r"
        f"PID|1||MRN{patient:06d}^^^HOSP^MR||DOE^JOHN^Q||19700101|M|||{patient} OAK RD^^TOWN^ST^12345"
        f"||(555)555-{patient % 10000:04d}\r"
        f"PV1|1|I|W1^101^A||||1234^WELBY^MARCUS|||MED||||||||V{patient:08d}^^^HOSP^VN\r"
    ).encode()


# -- servers (child processes) ---------------------------------------------------------------


def serve_baseline(path: str) -> None:
    """Minimal durable MLLP server: append, fdatasync per group, fixed ACK."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    pending: list[tuple[bytes, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
    cond = threading.Condition()

    def writer() -> None:
        while True:
            with cond:
                while not pending:
                    cond.wait()
                batch = pending[:]
                pending.clear()
            os.write(fd, b"".join(m for m, _, _ in batch))
            os.fdatasync(fd)
            for _, fut, loop in batch:
                loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))

    threading.Thread(target=writer, daemon=True).start()

    class Conn(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.decoder = FrameDecoder(1 << 20)
            self.queue: asyncio.Queue[bytes] = asyncio.Queue()
            asyncio.get_running_loop().create_task(self.answer())

        def data_received(self, data: bytes) -> None:
            for event in self.decoder.feed(data):
                self.queue.put_nowait(event.data)

        async def answer(self) -> None:
            loop = asyncio.get_running_loop()
            while True:
                msgs = [await self.queue.get()]
                while not self.queue.empty():
                    msgs.append(self.queue.get_nowait())
                futs = []
                with cond:
                    for m in msgs:
                        fut: asyncio.Future[None] = loop.create_future()
                        pending.append((m, fut, loop))
                        futs.append(fut)
                    cond.notify()
                await asyncio.gather(*futs)
                acks = []
                for m in msgs:
                    control = m.split(b"\r", 1)[0].split(b"|")[9]
                    acks.append(
                        frame(b"MSH|^~\\&|CMIO||||||ACK|1|P|2.5.1\rMSA|AA|" + control + b"\r")
                    )
                self.transport.write(b"".join(acks))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_cmio(journal: str, store: str | None, shortcuts: bool = True) -> None:
    """The engine: journal + ACK; with ``store``, processing into a SQLite FHIR store."""
    from cmio.interfaces.hl7v2.engine.channels import parse_channel
    from cmio.interfaces.hl7v2.engine.runtime import Engine
    from cmio.interfaces.hl7v2.mapping import SUPPORTED

    config = parse_channel({"name": "bench", "journal": journal, "source": {"port": 0}})
    sink: Any = None
    if store == "null":  # mapping and journal, no store: the engine's own share of latency
        from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome

        class NullStore:
            def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
                return [SinkOutcome(200) for _ in items]

            def exists(self, resource_type: str, resource_id: str) -> bool:
                return False

        sink = NullStore()
    elif store:
        from cmio.api.app import build_env
        from cmio.api.env import Settings
        from cmio.api.hl7 import RouterSink
        from cmio.api.router import FhirRouter

        env = build_env(f"sqlite:///{store}", Settings(validation="off", terminology_db=None))
        sink = RouterSink(FhirRouter(env), shortcuts=shortcuts)
    extra: dict[str, Any] = {}
    after = int(os.environ.get("CMIO_BENCH_WORKER_AFTER", "16"))  # -1: no preparation worker
    if "worker_after" in inspect.signature(Engine).parameters:  # (older trees: none)
        extra["worker_after"] = after if after >= 0 else None
    engine = Engine(
        [config], sink, supported_types=frozenset(SUPPORTED), process=bool(store), **extra
    )
    engine.start()
    if os.environ.get("CMIO_BENCH_GC_STATS"):
        gc_stats(os.environ["CMIO_BENCH_GC_STATS"])
    import cmio.interfaces.hl7v2.engine.runtime as runtime

    settle = getattr(runtime, "settle_heap", None)  # as `cmio hl7 listen` (older trees: none)
    if settle is not None and os.environ.get("CMIO_BENCH_SETTLE_HEAP", "1") == "1":
        settle()
    stop = asyncio.Event()
    asyncio.run(engine.run(stop, ports={"bench": 0}, ready=lambda p: print(p["bench"], flush=True)))


def gc_stats(path: str) -> None:
    """Count the cyclic GC's collections and pauses in this process (all threads): SIGUSR1
    starts over, SIGTERM writes ``young middle full total_ms longest_ms`` to ``path`` and
    exits."""
    import gc
    import signal

    counts, spent, began = [0, 0, 0], [0.0, 0.0], [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        pause = time.perf_counter() - began[0]
        counts[info["generation"]] += 1
        spent[0] += pause
        spent[1] = max(spent[1], pause)

    def restart(*_: Any) -> None:
        counts[:], spent[:] = [0, 0, 0], [0.0, 0.0]

    def report(*_: Any) -> None:
        Path(path).write_text(" ".join(map(str, [*counts, spent[0] * 1e3, spent[1] * 1e3])))
        os._exit(0)

    gc.callbacks.append(timed)
    signal.signal(signal.SIGUSR1, restart)
    signal.signal(signal.SIGTERM, report)


def start_server(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    extra = ["--no-shortcuts"] if "--no-shortcuts" in sys.argv else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.hl7", *extra, *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


# -- senders ---------------------------------------------------------------------------------


def sender(
    port: int,
    make: Callable[[str, int], bytes],
    prefix: str,
    seconds: float,
    window: int,
    latencies: list[float],
    counts: list[int],
) -> None:
    """Send for ``seconds`` keeping ``window`` messages in flight; record ACK latencies."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    decoder = FrameDecoder(1 << 20)
    sent: list[float] = []
    n = acked = 0
    end = time.perf_counter() + seconds
    while True:
        now = time.perf_counter()
        while n - acked < window and now < end:
            sock.sendall(frame(make(f"{prefix}{n}", (hash(prefix) + n * 7919) % 5000)))
            sent.append(time.perf_counter())
            n += 1
        if acked == n:
            break
        data = sock.recv(65536)
        t = time.perf_counter()
        for event in decoder.feed(data):
            assert b"MSA|AA|" in event.data, event.data[:200]
            latencies.append(t - sent[acked])
            acked += 1
    sock.close()
    counts.append(acked)


def drive(
    port: int,
    make: Callable[[str, int], bytes],
    tag: str,
    senders: int,
    seconds: float,
    window: int,
) -> dict[str, float]:
    latencies: list[float] = []
    counts: list[int] = []
    threads = [
        threading.Thread(target=sender, args=(port, make, f"{tag}-{i}-", seconds, window,
                                              latencies, counts))
        for i in range(senders)
    ]  # fmt: skip
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": sum(counts) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p95": latencies[int(len(latencies) * 0.95)] * 1000,
    }


def fdatasync_rate(directory: str) -> float:
    fd = os.open(os.path.join(directory, "sync.bin"), os.O_WRONLY | os.O_CREAT)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1:
        os.write(fd, b"x" * 512)
        os.fdatasync(fd)
        n += 1
    os.close(fd)
    return n / (time.perf_counter() - start)


def stored_latency(journal: str, since: float) -> tuple[float, float, int, float]:
    with sqlite3.connect(journal) as conn:
        rows = conn.execute(
            "SELECT processed_at - received_at, processed_at FROM messages"
            " WHERE state='processed' AND received_at >= ? ORDER BY 1",
            (since,),
        ).fetchall()
    if not rows:
        return float("nan"), float("nan"), 0, 0.0
    lat = [r[0] for r in rows]
    return (
        lat[len(lat) // 2] * 1000,
        lat[int(len(lat) * 0.95)] * 1000,
        len(lat),
        max(r[1] for r in rows),
    )


def paced_latency(
    port: int, journal: str, make: Callable[[str, int], bytes], rate: float, seconds: float
) -> tuple[float, float, int]:
    """Send at ``rate`` for 2 x ``seconds``; latency over the second half (after warm-up)."""
    since = time.time()
    count = max(2, int(rate * seconds * 2))
    sock = socket.create_connection(("127.0.0.1", port))
    decoder = FrameDecoder(1 << 20)
    for i in range(count):
        t = time.perf_counter()
        sock.sendall(frame(make(f"PACE{i}", i % 500)))
        while not list(decoder.feed(sock.recv(65536))):
            pass
        time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t)))
    sock.close()
    deadline = time.time() + 300
    while time.time() < deadline and stored_latency(journal, since)[2] < count:
        time.sleep(0.5)
    p50, p95, n, _ = stored_latency(journal, since + seconds)
    return p50, p95, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--paced-rate", type=float, default=5.0)
    parser.add_argument("--backlog", type=int, default=200)
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput rounds")
    parser.add_argument("--no-shortcuts", action="store_true", help="the previous store path")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, *rest = args.serve
        if kind == "baseline":
            serve_baseline(rest[0])
        else:
            serve_cmio(rest[0], rest[1] if len(rest) > 1 else None, not args.no_shortcuts)
        return
    tmp = tempfile.mkdtemp(prefix="cmio-hl7-bench-")
    print(f"fdatasync: {fdatasync_rate(tmp):,.0f}/s; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict[str, float]]] = {}
    for r in range(0 if args.latency_only else args.rounds):
        for server in ("baseline", "cmio", "cmio+store"):
            journal = os.path.join(tmp, f"{server}-{r}.db")
            serve = (["--serve", "baseline", journal] if server == "baseline" else
                     ["--serve", "cmio", journal] + ([os.path.join(tmp, f"store-{r}.db")]
                                                     if server == "cmio+store" else []))  # fmt: skip
            proc, port = start_server(serve)
            try:
                for kind, make in (("ORU", oru), ("ADT", adt)):
                    for style, window in (("strict", 1), ("window", WINDOW)):
                        key = f"{server} {kind} {style}"
                        tag = f"r{r}{kind}{style}"
                        results.setdefault(key, []).append(
                            drive(port, make, tag, args.senders, args.seconds, window)
                        )
                        if server == "cmio+store" and style == "strict" and kind == "ORU":
                            time.sleep(0)  # the store keeps processing in the background
            finally:
                proc.terminate()
                proc.wait(30)
    print(f"\n{'server / messages / senders':34} {'msg/s':>8} {'ACK p50 ms':>10} {'p95 ms':>8}")
    medians: dict[str, float] = {}
    for key, runs in results.items():
        rate = statistics.median(x["rate"] for x in runs)
        medians[key] = rate
        print(
            f"{key:34} {rate:8,.0f} {statistics.median(x['p50'] for x in runs):10.1f}"
            f" {statistics.median(x['p95'] for x in runs):8.1f}"
        )
    print()
    for key, rate in medians.items():
        if key.startswith("cmio"):
            base = medians["baseline " + key.split(" ", 1)[1]]
            print(f"{key:34} {rate / base:6.2f} x baseline")
    # Receipt-to-stored latency at a paced rate: ORU and ADT into the store, ORU with no store.
    for kind, make, store_name in (("ORU", oru, "store"), ("ADT", adt, "store"),
                                   ("ORU", oru, "null")):  # fmt: skip
        journal = os.path.join(tmp, f"paced-{kind}-{store_name}.db")
        target = "null" if store_name == "null" else os.path.join(tmp, f"paced-{kind}.db")
        proc, port = start_server(["--serve", "cmio", journal, target])
        try:
            p50, p95, n = paced_latency(port, journal, make, args.paced_rate, args.seconds)
        finally:
            proc.terminate()
            proc.wait(30)
        print(
            f"receipt to {'stored' if store_name == 'store' else 'processed (no store)'} at"
            f" {args.paced_rate:g} {kind}/s (second half, {n} messages):"
            f" p50 {p50:.1f} ms, p95 {p95:.1f} ms"
        )
    journal = os.path.join(tmp, "drain.db")
    proc, port = start_server(["--serve", "cmio", journal, os.path.join(tmp, "drain-store.db")])
    try:
        decoder = FrameDecoder(1 << 20)
        # Saturated store: a backlog of ORU sent at once, drained as fast as the store goes.
        since = time.time()
        backlog = args.backlog
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"".join(frame(oru(f"SAT{i}", 1000 + i)) for i in range(backlog)))
        got = 0
        while got < backlog:
            got += len(list(decoder.feed(sock.recv(65536))))
        acked = time.time() - since
        sock.close()
        deadline = time.time() + 900
        while time.time() < deadline:
            _, _, n, last = stored_latency(journal, since)
            if n >= backlog:
                break
            time.sleep(0.5)
        print(
            f"store drain: {backlog} ORU^R01 (10 OBX, pipelined) ACKed in {acked:.2f} s;"
            f" {n} stored in {last - since:.1f} s = {n / max(last - since, 1e-9):,.1f}"
            " messages/s"
        )
    finally:
        proc.terminate()
        proc.wait(30)
    Path(tmp).joinpath("done").touch()


if __name__ == "__main__":
    main()
