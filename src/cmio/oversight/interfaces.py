"""Interface health for the oversight pages: the HL7 v2 engine's channels, message rates,
latency, error queue and journal, read from the engine's journal file, and the replay of
parked messages.

Everything is read from the journal (:mod:`cmio.interfaces.hl7v2.engine.journal`), so
the web app reports on an engine running in another process. The live figures are taken
at ``now`` (last hour, last day); the period figures count the messages received in the
reporting period, by month. Replay puts parked messages back to ``received`` and runs
them through the channel's processor (as ``cmio hl7 replay`` does,
https://www.hl7.org/implement/standards/product_brief.cfm?product_id=185 for v2 itself).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.journal import open_readonly
from cmio.oversight.headline import Headline
from cmio.oversight.interfaces_replay import ReplayResult, replay
from cmio.oversight.period import ReportingPeriod
from cmio.reports import Metric, MetricRow, Paragraph, Section, Table
from cmio.store.base import Repository

__all__ = [
    "HREF",
    "ChannelRow",
    "ErrorRow",
    "InterfacesSummary",
    "RateRow",
    "ReplayResult",
    "error_page",
    "headlines",
    "interfaces_summary",
    "replay",
    "report_sections",
]

HREF = "/workbench/interfaces"
HOUR = 3600.0
DAY = 86400.0
IDLE_AFTER = DAY
"""A channel with no message for this long is ``idle``."""


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel.

    Attributes:
        name: channel name. senders: distinct senders (MSH-3^MSH-4) seen.
        status: ``errors`` (messages parked), ``backlog`` (waiting over a minute),
            ``idle`` (nothing for a day) or ``ok``.
        total: messages journaled. last_hour, last_day: received (duplicates excluded).
        error_queue: parked messages. queue_depth: waiting to be processed.
        error_rate_day: share of the last day's messages answered AE/AR or parked.
        latency_p50, latency_p95: receipt to processed over the last day (seconds).
        last_message_at: epoch seconds of the newest message.
    """

    name: str
    senders: tuple[str, ...]
    status: str
    total: int
    last_hour: int
    last_day: int
    error_queue: int
    queue_depth: int
    error_rate_day: float
    latency_p50: float | None
    latency_p95: float | None
    last_message_at: float | None


@dataclass(frozen=True, slots=True)
class RateRow:
    """Messages of one type on one channel, last hour and last day."""

    channel: str
    message_type: str
    last_hour: int
    last_day: int


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """A message parked in the error queue."""

    id: int
    channel: str
    control_id: str
    message_type: str
    sender: str
    received_at: float
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class InterfacesSummary:
    """The interfaces at ``at`` and over a reporting period.

    Attributes:
        period: the reporting period. journal: the journal file (None: none configured).
        available: whether the journal file exists. at: when read (epoch seconds).
        channels, rates: live figures. errors_total: parked messages; errors: the
        newest of them (at most ``error_limit``). by_state: journal rows by state.
        journal_bytes: the file's size (with its WAL). oldest, newest: received times.
        period_messages, period_errors: received in the period, and those answered
        AE/AR or parked. by_month: ``(YYYY-MM, messages, errors)`` in the period.
    """

    period: ReportingPeriod
    journal: str | None
    available: bool
    at: float
    channels: tuple[ChannelRow, ...] = ()
    rates: tuple[RateRow, ...] = ()
    errors_total: int = 0
    errors: tuple[ErrorRow, ...] = ()
    by_state: tuple[tuple[str, int], ...] = ()
    journal_bytes: int = 0
    oldest: float | None = None
    newest: float | None = None
    period_messages: int = 0
    period_errors: int = 0
    by_month: tuple[tuple[str, int, int], ...] = ()

    @property
    def total(self) -> int:
        """Journal rows."""
        return sum(n for _, n in self.by_state)


def _epoch(day: object) -> float:
    return datetime.fromisoformat(str(day)).replace(tzinfo=UTC).timestamp()


def interfaces_summary(
    repository: Repository | None,
    period: ReportingPeriod,
    journal: str | Path | None = None,
    *,
    now: float | None = None,
    error_limit: int = 200,
    history: bool = True,
) -> InterfacesSummary:
    """Read the journal: channels, rates, latency, error queue, journal and period figures.

    Args:
        repository: unused (the oversight areas' common signature).
        period: the reporting period of the monthly figures.
        journal: the engine's journal file (None or missing: ``available`` is False).
        now: the instant of the live figures (default: the clock).
        error_limit: most parked messages listed (newest first).
        history: also count the period's messages by month (a scan of the period's
            rows; the live monitor page does without).
    """
    at = time.time() if now is None else now
    path = None if journal is None else str(journal)
    if path is None or not Path(path).is_file():
        return InterfacesSummary(period, path, False, at)
    conn = open_readonly(path)
    try:
        return _read(conn, period, path, at, error_limit, history)
    finally:
        conn.close()


def _read(
    conn: sqlite3.Connection,
    period: ReportingPeriod,
    path: str,
    at: float,
    error_limit: int,
    history: bool,
) -> InterfacesSummary:
    q = conn.execute
    hour, day = at - HOUR, at - DAY
    rates = tuple(
        RateRow(c, t or "unknown", int(h or 0), int(d or 0))
        for c, t, h, d in q(
            "SELECT channel, message_type, sum(received_at >= ?), count(*) FROM messages"
            " WHERE received_at >= ? AND state != 'duplicate' GROUP BY 1, 2 ORDER BY 1, 2",
            (hour, day),
        )
    )
    recent = {
        name: (int(seen), int(bad or 0))
        for name, seen, bad in q(
            "SELECT channel, count(*), sum(ack_code != 'AA' OR state = 'error') FROM messages"
            " WHERE received_at >= ? AND state != 'duplicate' GROUP BY 1",
            (day,),
        )
    }
    per: dict[str, list[Any]] = {}  # total, last, parked, waiting, oldest, senders
    for name, sender, total, last, parked, waiting, oldest in q(
        "SELECT channel, sender, count(*), max(received_at), sum(state = 'error'),"
        " sum(state IN ('received', 'retrying')),"
        " min(CASE WHEN state IN ('received', 'retrying') THEN received_at END)"
        " FROM messages GROUP BY 1, 2 ORDER BY 1, 2"
    ):
        cell = per.setdefault(name, [0, None, 0, 0, None, []])
        cell[0] += total
        cell[1] = last if cell[1] is None else max(cell[1], last)
        cell[2] += parked or 0
        cell[3] += waiting or 0
        if oldest is not None:
            cell[4] = oldest if cell[4] is None else min(cell[4], oldest)
        cell[5].append(sender)
    channels: list[ChannelRow] = []
    for name, (total, last, parked, waiting, oldest, senders) in sorted(per.items()):
        seen, bad = recent.get(name, (0, 0))
        if parked:
            status = "errors"
        elif waiting and oldest is not None and at - oldest > 60:
            status = "backlog"
        elif last is None or at - last > IDLE_AFTER:
            status = "idle"
        else:
            status = "ok"
        in_hour = sum(r.last_hour for r in rates if r.channel == name)
        p50, p95 = _latency(conn, name, day)
        channels.append(
            ChannelRow(
                name, tuple(senders), status, int(total), in_hour, seen, parked,
                waiting, bad / seen if seen else 0.0, p50, p95, last,
            )
        )  # fmt: skip
    errors_total = int(q("SELECT count(*) FROM messages WHERE state = 'error'").fetchone()[0])
    errors = tuple(
        ErrorRow(int(i), c, ctl, t, s, float(r), int(a), e or "")
        for i, c, ctl, t, s, r, a, e in q(
            "SELECT id, channel, control_id, message_type, sender, received_at, attempts, error"
            " FROM messages WHERE state = 'error' ORDER BY received_at DESC, id DESC LIMIT ?",
            (error_limit,),
        )
    )
    by_state = tuple(
        (str(s), int(n))
        for s, n in q("SELECT state, count(*) FROM messages GROUP BY 1 ORDER BY 2 DESC, 1")
    )
    oldest, newest = q("SELECT min(received_at), max(received_at) FROM messages").fetchone()
    start, end = _epoch(period.start), _epoch(period.end) + DAY
    months: dict[str, list[int]] = {}
    if history:  # by day in SQL (integer arithmetic), then by month here
        for days, n, bad in q(
            "SELECT CAST(received_at / 86400 AS INTEGER), count(*),"
            " sum(ack_code != 'AA' OR state = 'error') FROM messages"
            " WHERE received_at >= ? AND received_at < ? AND state != 'duplicate' GROUP BY 1",
            (start, end),
        ):
            month = datetime.fromtimestamp(days * DAY, UTC).strftime("%Y-%m")
            cell = months.setdefault(month, [0, 0])
            cell[0] += n
            cell[1] += bad or 0
    size = sum(p.stat().st_size for p in (Path(path), Path(path + "-wal")) if p.is_file())
    return InterfacesSummary(
        period, path, True, at, tuple(channels), rates, errors_total, errors, by_state, size,
        oldest, newest, sum(m[0] for m in months.values()), sum(m[1] for m in months.values()),
        tuple((m, c[0], c[1]) for m, c in sorted(months.items())),
    )  # fmt: skip


def _latency(conn: sqlite3.Connection, channel: str, since: float) -> tuple[float | None, ...]:
    """Receipt to processed since ``since``: the 50th and 95th percentiles (nearest rank
    below), each read by one ordered index step."""
    where = (
        " FROM messages WHERE channel = ? AND received_at >= ? AND state = 'processed'"
        " AND processed_at IS NOT NULL"
    )
    (count,) = conn.execute("SELECT count(*)" + where, (channel, since)).fetchone()
    out: list[float | None] = []
    for share in (0.5, 0.95):
        if not count:
            out.append(None)
            continue
        rank = min(count - 1, int(share * count))
        row = conn.execute(
            "SELECT processed_at - received_at" + where + " ORDER BY 1 LIMIT 1 OFFSET ?",
            (channel, since, rank),
        ).fetchone()
        out.append(float(row[0]))
    return tuple(out)


def error_page(journal: str | Path, offset: int, limit: int) -> list[ErrorRow]:
    """Parked messages, newest first, from ``offset`` (the error queue's pages)."""
    conn = open_readonly(journal)
    try:
        return [
            ErrorRow(int(i), c, ctl, t, s, float(r), int(a), e or "")
            for i, c, ctl, t, s, r, a, e in conn.execute(
                "SELECT id, channel, control_id, message_type, sender, received_at, attempts,"
                " error FROM messages WHERE state = 'error'"
                " ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
        ]
    finally:
        conn.close()


def headlines(summary: InterfacesSummary) -> list[Headline]:
    """The executive overview's interface tiles (each drills down to the monitor)."""
    if not summary.available:
        return [Headline("interfaces", "Interface error queue", "\u2014",
                         "no HL7 journal configured", "", HREF)]  # fmt: skip
    day = sum(c.last_day for c in summary.channels)
    bad = sum(round(c.error_rate_day * c.last_day) for c in summary.channels)
    trend = tuple((m, float(n)) for m, n, _ in summary.by_month)
    return [
        Headline(
            "interfaces",
            "Interface error queue",
            f"{summary.errors_total:,}",
            f"{len(summary.channels)} channels",
            "bad" if summary.errors_total else "good",
            HREF + "#errors",
        ),
        Headline(
            "interfaces",
            "HL7 messages, last 24 h",
            f"{day:,}",
            f"{bad / day:.1%} errors" if day else "none received",
            "warn" if day and bad / day > 0.02 else "",
            HREF,
            trend,
        ),
    ]


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "\u2014"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def report_sections(summary: InterfacesSummary) -> list[Section]:
    """The steering-committee report's interface section: the period's messages and
    errors by month, and every channel's state when the report was made."""
    if not summary.available:
        return [Section("Interface health", [Paragraph("No HL7 v2 journal is configured.")])]
    rate = summary.period_errors / summary.period_messages if summary.period_messages else 0.0
    blocks: list[MetricRow | Table | Paragraph] = [
        MetricRow(
            [
                Metric("Messages", f"{summary.period_messages:,}", summary.period.label),
                Metric("Answered AE/AR or parked", f"{rate:.1%}", f"{summary.period_errors:,}"),
                Metric("Error queue now", f"{summary.errors_total:,}", _when(summary.at)),
                Metric("Channels", str(len(summary.channels))),
            ]
        )
    ]
    if summary.by_month:
        blocks.append(
            Table(["Month", "Messages", "Errors"],
                  [[m, f"{n:,}", f"{e:,}"] for m, n, e in summary.by_month],
                  "Messages received by month"))  # fmt: skip
    if summary.channels:
        blocks.append(
            Table(
                ["Channel", "Status", "Last 24 h", "Error rate", "Error queue", "Latency p95"],
                [
                    [c.name, c.status, f"{c.last_day:,}", f"{c.error_rate_day:.1%}",
                     f"{c.error_queue:,}",
                     "\u2014" if c.latency_p95 is None else f"{c.latency_p95:.2f} s"]
                    for c in summary.channels
                ],
                "Channels",
            )
        )  # fmt: skip
    return [Section("Interface health", blocks)]
