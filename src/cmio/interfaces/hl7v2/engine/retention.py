"""Journal retention: what is done with leaves the journal after the channel's retention.

A channel's ``retention``
(:class:`~cmio.interfaces.hl7v2.engine.channeltypes.Retention`) has two horizons, both
counted from receipt:

* after ``days`` (default 30) a finished row (``processed``, ``filtered``, ``duplicate``,
  ``rejected``) loses its message bytes; its metadata stays;
* after ``duplicate_window_days`` (default: ``days``) the row is deleted. Until then the
  MSH-10 control id of an accepted message is still known, so a resend from the same
  sender is answered as a duplicate and not processed again; after it, the same control
  id would be taken as a new message. Keep the window longer than any sender's resend
  horizon (an interface that replays a week of traffic needs more than a week).

The error queue (``error``) and unprocessed messages (``received``, ``retrying``) are
never pruned, whatever their age: they are work still to do. Pruning runs in short
transactions of a few thousand rows, so receipts (which share the SQLite write lock)
wait milliseconds, not seconds; freed pages are reused by later messages.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cmio.interfaces.hl7v2.engine.channeltypes import Retention

__all__ = ["FINISHED_STATES", "PruneResult", "prune_journal"]

FINISHED_STATES = ("processed", "filtered", "duplicate", "rejected")
_DAY = 86400.0
_IN_FINISHED = f"state IN ({','.join(repr(s) for s in FINISHED_STATES)})"


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one prune did (or, dry, would do) for one channel."""

    channel: str
    bodies_dropped: int
    rows_deleted: int


def prune_journal(
    path: str | Path,
    channel: str,
    retention: Retention,
    *,
    now: float | None = None,
    dry_run: bool = False,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Prune one channel's finished journal rows past its retention.

    Args:
        path: the journal file.
        channel: the channel name.
        retention: its retention.
        now: the reference time (epoch seconds; default: now).
        dry_run: count only.
        chunk: rows per transaction.
        progress: called with the number of rows handled after each transaction.
    """
    now = time.time() if now is None else now
    body_cutoff = now - retention.days * _DAY
    row_cutoff = now - retention.duplicate_window_days * _DAY
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        if dry_run:
            deleted = _count(conn, "", channel, row_cutoff)
            dropped = _count(conn, " AND received_at >= ? AND length(raw) > 0", channel,
                             body_cutoff, row_cutoff)  # fmt: skip
            return PruneResult(channel, dropped, deleted)
        deleted = _chunks(
            conn,
            f"DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE channel=?"
            f" AND received_at < ? AND {_IN_FINISHED} LIMIT ?)",
            (channel, row_cutoff, chunk),
            progress,
        )
        dropped = 0
        if body_cutoff > row_cutoff:
            dropped = _chunks(
                conn,
                f"UPDATE messages SET raw = x'' WHERE id IN (SELECT id FROM messages WHERE"
                f" channel=? AND received_at < ? AND {_IN_FINISHED} AND length(raw) > 0 LIMIT ?)",
                (channel, body_cutoff, chunk),
                progress,
            )
        return PruneResult(channel, dropped, deleted)
    finally:
        conn.close()


def _count(conn: sqlite3.Connection, extra: str, channel: str, cutoff: float, *more: float) -> int:
    sql = f"SELECT count(*) FROM messages WHERE channel=? AND received_at < ? AND {_IN_FINISHED}"
    return int(conn.execute(sql + extra, (channel, cutoff, *more)).fetchone()[0])


def _chunks(
    conn: sqlite3.Connection,
    sql: str,
    args: tuple[str, float, int],
    progress: Callable[[int], None] | None,
) -> int:
    total = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(sql, args).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        total += done
        if progress is not None and done:
            progress(done)
        if done < args[2]:
            return total
