"""Interface health from the journal: rates, errors, queue depth, lag, last message.

Everything is computed from the journal file, so any process can report it: the
engine itself, ``cmio hl7 status`` and the web app's ``/metrics`` (Prometheus text
exposition format 0.0.4,
https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.journal import open_readonly

__all__ = ["ChannelHealth", "InterfaceHealth", "read_health", "to_prometheus"]


@dataclass(slots=True)
class ChannelHealth:
    """One channel's figures.

    Attributes:
        channel: channel name.
        per_minute: messages received in the last minute, by message type.
        received_total: messages ever received, by state.
        error_rate: share of the last hour's messages answered AE/AR or parked (0..1).
        queue_depth: messages journaled and not yet processed (received or retrying).
        error_queue: messages parked in the error queue.
        lag_seconds: age of the oldest message still waiting (0 when none).
        latency_p95_seconds: receipt to processed, 95th percentile over the last minute.
        last_message_at: epoch seconds of the newest message, or None.
    """

    channel: str
    per_minute: dict[str, int] = field(default_factory=dict)
    received_total: dict[str, int] = field(default_factory=dict)
    error_rate: float = 0.0
    queue_depth: int = 0
    error_queue: int = 0
    lag_seconds: float = 0.0
    latency_p95_seconds: float | None = None
    last_message_at: float | None = None


@dataclass(slots=True)
class InterfaceHealth:
    """Every channel's health at one instant."""

    at: float
    channels: list[ChannelHealth]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the dashboard."""
        return {"at": self.at, "channels": [asdict(c) for c in self.channels]}


def read_health(journal: str | Path, now: float | None = None) -> InterfaceHealth:
    """Read the health of every channel in a journal file (empty when the file is missing)."""
    now = time.time() if now is None else now
    if not Path(journal).is_file():
        return InterfaceHealth(now, [])
    conn = open_readonly(journal)
    try:
        return _read(conn, now)
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, now: float) -> InterfaceHealth:
    channels: dict[str, ChannelHealth] = {}

    def get(name: str) -> ChannelHealth:
        return channels.setdefault(name, ChannelHealth(name))

    for name, state, count in conn.execute(
        "SELECT channel, state, count(*) FROM messages GROUP BY channel, state"
    ):
        get(name).received_total[state] = count
    for name, mtype, count in conn.execute(
        "SELECT channel, message_type, count(*) FROM messages WHERE received_at >= ?"
        " AND state != 'duplicate' GROUP BY channel, message_type",
        (now - 60,),
    ):
        get(name).per_minute[mtype or "unknown"] = count
    for name, total, bad in conn.execute(
        "SELECT channel, count(*), sum(ack_code != 'AA' OR state = 'error') FROM messages"
        " WHERE received_at >= ? GROUP BY channel",
        (now - 3600,),
    ):
        get(name).error_rate = (bad or 0) / total if total else 0.0
    for name, depth, oldest in conn.execute(
        "SELECT channel, count(*), min(received_at) FROM messages"
        " WHERE state IN ('received', 'retrying') GROUP BY channel"
    ):
        health = get(name)
        health.queue_depth = depth
        health.lag_seconds = max(0.0, now - oldest) if oldest is not None else 0.0
    for name, count in conn.execute(
        "SELECT channel, count(*) FROM messages WHERE state = 'error' GROUP BY channel"
    ):
        get(name).error_queue = count
    for name, last in conn.execute(
        "SELECT channel, max(received_at) FROM messages GROUP BY channel"
    ):
        get(name).last_message_at = last
    for name in channels:
        latencies = [
            r[0] for r in conn.execute(
                "SELECT processed_at - received_at FROM messages WHERE channel = ?"
                " AND received_at >= ? AND state = 'processed' ORDER BY 1", (name, now - 60)
            )
        ]  # fmt: skip
        if latencies:
            channels[name].latency_p95_seconds = latencies[
                min(len(latencies) - 1, int(0.95 * len(latencies)))
            ]
    return InterfaceHealth(now, [channels[k] for k in sorted(channels)])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_prometheus(health: InterfaceHealth) -> str:
    """The health in Prometheus text format (one family per figure, labelled by channel)."""
    families: list[tuple[str, str, str, list[tuple[dict[str, str], float]]]] = [
        ("cmio_hl7_messages_last_minute", "gauge",
         "Messages received in the last minute, by channel and message type.",
         [({"channel": c.channel, "type": t}, n) for c in health.channels
          for t, n in sorted(c.per_minute.items())]),
        ("cmio_hl7_received_total", "counter", "Messages ever received, by channel.",
         [({"channel": c.channel}, sum(c.received_total.values())) for c in health.channels]),
        ("cmio_hl7_messages", "gauge", "Journaled messages by channel and current state.",
         [({"channel": c.channel, "state": s}, n) for c in health.channels
          for s, n in sorted(c.received_total.items())]),
        ("cmio_hl7_error_ratio", "gauge",
         "Share of the last hour's messages answered AE/AR or parked in the error queue.",
         [({"channel": c.channel}, c.error_rate) for c in health.channels]),
        ("cmio_hl7_queue_depth", "gauge", "Messages journaled and not yet processed.",
         [({"channel": c.channel}, c.queue_depth) for c in health.channels]),
        ("cmio_hl7_error_queue", "gauge", "Messages parked in the error queue.",
         [({"channel": c.channel}, c.error_queue) for c in health.channels]),
        ("cmio_hl7_lag_seconds", "gauge", "Age of the oldest message still waiting.",
         [({"channel": c.channel}, c.lag_seconds) for c in health.channels]),
        ("cmio_hl7_latency_p95_seconds", "gauge",
         "Receipt to processed, 95th percentile over the last minute.",
         [({"channel": c.channel}, c.latency_p95_seconds) for c in health.channels
          if c.latency_p95_seconds is not None]),
        ("cmio_hl7_last_message_timestamp_seconds", "gauge",
         "When the newest message arrived (Unix time).",
         [({"channel": c.channel}, c.last_message_at) for c in health.channels
          if c.last_message_at is not None]),
    ]  # fmt: skip
    lines: list[str] = []
    for name, kind, text, samples in families:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{rendered}}} {float(value)!r}")
    return "\n".join(lines) + "\n"
