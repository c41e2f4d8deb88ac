"""The load driver: N concurrent HTTP clients, a dashboard user and an HL7 feed, for a duration.

Everything runs on one asyncio loop (httpx async client; MLLP over asyncio streams).
Every interaction's latency is recorded; an error is a transport failure, a status
outside 2xx, or an HL7 ACK other than AA.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from bench.load.workload import MIX, Request, Seed, build_request

__all__ = ["WRITTEN", "Stats", "count_written", "hl7_message", "lost_writes", "run_load"]

WRITTEN: dict[str, str] = {
    "vital-sign Observations": "/fhir/Observation?category=vital-signs&_summary=count",
    "admitted Patients": "/fhir/Patient?family=Admitted&_summary=count",
}
"""Searches counting what the workload writes (creates: 1 Observation; transactions:
1 Patient, 1 Encounter, 3 Observations)."""


@dataclass(slots=True)
class Stats:
    """Latencies (seconds) and errors per interaction."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    """The first error of each interaction (status and start of the body)."""
    elapsed: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    def record(self, interaction: str, seconds: float, error: str | None = None) -> None:
        """Count one request."""
        self.latencies.setdefault(interaction, []).append(seconds)
        if error is not None:
            self.errors[interaction] = self.errors.get(interaction, 0) + 1
            at = time.perf_counter() - self.t0
            self.samples.setdefault(interaction, f"at {at:.1f} s: {error[:300]}")

    def total_errors(self) -> int:
        """Errors over all interactions."""
        return sum(self.errors.values())

    def summary(self) -> dict[str, dict[str, float]]:
        """Per interaction: count, errors, rate (/s), p50/p95/p99 (ms)."""
        out: dict[str, dict[str, float]] = {}
        for name, values in sorted(self.latencies.items()):
            ordered = sorted(values)

            def pct(q: float, ordered: list[float] = ordered) -> float:
                return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

            out[name] = {
                "count": len(ordered),
                "errors": self.errors.get(name, 0),
                "rate": len(ordered) / self.elapsed if self.elapsed else 0.0,
                "p50": pct(0.50),
                "p95": pct(0.95),
                "p99": pct(0.99),
            }
        return out


def hl7_message(n: int, patient: int) -> bytes:
    """An ORU^R01 (three numeric OBX) or, every fourth message, an ADT^A08."""
    msh = "MSH|^~\\&|LAB|HOSP|CMIO|HOSP|20260101120000||"
    pid = f"PID|1||LD{patient:06d}^^^HOSP^MR||LOAD^PAT^Q||19800102|F\r"
    if n % 4 == 3:
        return (
            f"{msh}ADT^A08^ADT_A01|LOAD{n}|P|2.5.1\rEVN|A08|20260101120000\r{pid}"
            f"PV1|1|I|W1^101^A||||1234^WELBY^MARCUS|||MED||||||||V{patient:08d}^^^HOSP^VN\r"
        ).encode()
    obx = "".join(
        f"OBX|{i}|NM|{code}^LN||{4 + i}.{n % 10}|mmol/L^mmol/L^UCUM|3.5-10.0|N|||F\r"
        for i, code in enumerate(("2345-7^Glucose", "2160-0^Creatinine", "2951-2^Sodium"), 1)
    )
    return (
        f"{msh}ORU^R01^ORU_R01|LOAD{n}|P|2.5.1\r{pid}"
        f"OBR|1|P{n}|F{n}|24323-8^Metabolic panel^LN|||20260101110000\r{obx}"
    ).encode()


async def _client(
    http: httpx.AsyncClient,
    seed: Seed,
    rng: random.Random,
    stats: Stats,
    end: float,
    mix: dict[str, int],
) -> None:
    names, weights = list(mix), list(mix.values())
    while time.perf_counter() < end:
        request = build_request(rng.choices(names, weights)[0], seed, rng)
        await _send(http, request, stats)


async def _send(http: httpx.AsyncClient, request: Request, stats: Stats) -> None:
    headers = {"content-type": "application/fhir+json"} if request.body else None
    started = time.perf_counter()
    error: str | None = None
    try:
        response = await http.request(
            request.method, request.path, content=request.body, headers=headers
        )
        if not 200 <= response.status_code < 300:
            error = f"{response.status_code} {request.method} {request.path}: {response.text}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__} {request.method} {request.path}: {exc}"
    stats.record(request.interaction, time.perf_counter() - started, error)


async def _dashboard(http: httpx.AsyncClient, stats: Stats, end: float, pause: float) -> None:
    """A person with the overview and the interface health open, refreshing."""
    while time.perf_counter() < end:
        await _send(http, Request("dashboard", "GET", "/"), stats)
        await _send(http, Request("interfaces-health", "GET", "/interfaces/health"), stats)
        await asyncio.sleep(pause)


async def _hl7_feed(port: int, rate: float, stats: Stats, end: float, window: int = 32) -> None:
    """Send HL7 v2 messages over one MLLP connection at ``rate`` per second.

    Messages are pipelined (up to ``window`` awaiting their ACK), so the rate holds
    while ACKs are slow; each ACK's latency is counted from its message's send.
    """
    from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = FrameDecoder(1 << 20)
    pending: deque[float] = deque()
    slots = asyncio.Semaphore(window)

    async def acks() -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                if pending:
                    raise ConnectionError("the engine closed the connection")
                return
            now = time.perf_counter()
            for event in decoder.feed(data):
                sent = pending.popleft()
                slots.release()
                ok = b"MSA|AA|" in event.data
                stats.record("hl7-mllp", now - sent, None if ok else repr(event.data[:300]))

    reading = asyncio.create_task(acks())
    n = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() < end and not reading.done():
            due = start + n / rate
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            await slots.acquire()
            pending.append(time.perf_counter())
            writer.write(frame(hl7_message(n, n % 500)))
            await writer.drain()
            n += 1
        deadline = time.perf_counter() + 30
        while pending and not reading.done() and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if reading.done() and reading.exception() is not None:
            raise reading.exception()  # type: ignore[misc]
        for _ in range(len(pending)):
            stats.record("hl7-mllp", 30.0, "no ACK within 30 s")
    finally:
        reading.cancel()
        writer.close()


async def run_load(
    base: str,
    seed: Seed,
    *,
    clients: int = 50,
    duration: float = 600.0,
    hl7_port: int | None = None,
    hl7_rate: float = 20.0,
    dashboard_pause: float = 2.0,
    seed_value: int = 1,
    mix: dict[str, int] | None = None,
    dashboard: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Stats:
    """Drive the server at ``base`` (its root URL) for ``duration`` seconds.

    Args:
        base: the server root, e.g. ``http://127.0.0.1:8080``.
        seed: the patients the workload reads, searches and updates.
        clients: concurrent clients (each sends its next request when the last answers).
        duration: seconds.
        hl7_port: the MLLP port of an HL7 engine to feed; None: no feed.
        hl7_rate: HL7 messages per second.
        dashboard_pause: seconds between the dashboard user's refreshes.
        seed_value: random seed of the mix.
        mix: interaction weights (default :data:`bench.load.workload.MIX`).
        dashboard: whether the dashboard user runs.
        progress: called about once a second with the elapsed fraction.
    """
    stats = Stats()  # error times count from here
    # keep-alive shorter than uvicorn's (5 s): never reuse a connection the server is closing
    limits = httpx.Limits(
        max_connections=clients + 4, max_keepalive_connections=clients + 4, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        end = started + duration
        tasks = [
            asyncio.create_task(
                _client(http, seed, random.Random(seed_value * 1000 + i), stats, end, mix or MIX)
            )
            for i in range(clients)
        ]
        if dashboard:
            tasks.append(asyncio.create_task(_dashboard(http, stats, end, dashboard_pause)))
        if hl7_port is not None:
            tasks.append(asyncio.create_task(_hl7_feed(hl7_port, hl7_rate, stats, end)))
        while progress is not None and time.perf_counter() < end:
            progress(min(1.0, (time.perf_counter() - started) / duration))
            await asyncio.sleep(1.0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stats.elapsed = time.perf_counter() - started
    for result in results:
        if isinstance(result, BaseException):
            stats.record("driver", 0.0, f"{type(result).__name__}: {result}")
    return stats


def count_written(base: str) -> dict[str, int]:
    """How many of the workload's kinds of resource the server at ``base`` holds."""
    counts = {}
    for name, path in WRITTEN.items():
        response = httpx.get(base + path, timeout=300)
        response.raise_for_status()
        counts[name] = int(response.json()["total"])
    return counts


def lost_writes(before: dict[str, int], after: dict[str, int], stats: Stats) -> list[str]:
    """Differences between what was acknowledged (2xx) and what the store now holds."""

    def acknowledged(name: str) -> int:
        return len(stats.latencies.get(name, [])) - stats.errors.get(name, 0)

    expected = {
        "vital-sign Observations": acknowledged("create") + 3 * acknowledged("transaction"),
        "admitted Patients": acknowledged("transaction"),
    }
    return [
        f"{name}: {after[name] - before[name]} stored, {count} acknowledged"
        for name, count in expected.items()
        if after[name] - before[name] != count
    ]
