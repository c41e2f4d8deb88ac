"""The durable message journal: SQLite (WAL, ``synchronous=FULL``) with group commit.

Every received message is appended here *before* its ACK is sent. One writer
thread takes every append and state update waiting in its queue, runs them in one
transaction and commits once (one WAL fsync), then releases all their callers: N
connections pay for one fsync (https://www.sqlite.org/wal.html,
https://www.sqlite.org/pragma.html#pragma_synchronous).

States: ``received`` (waiting to be processed), ``retrying`` (a downstream failed,
next attempt scheduled), ``processed``, ``filtered`` (a channel filter dropped it),
``error`` (parked in the error queue with the reason), ``rejected`` (answered AE/AR),
``duplicate`` (its MSH-10 control id was already accepted from the same sender on the
same channel; ``dup_of`` names the original). Accepted messages are unique per
(channel, sender, control id), so a resent message is never processed twice while
its original is in the journal: the duplicate window is the channel's
``retention.duplicate_window_days`` (default 30 days; see :mod:`.retention`).
Other processes (``cmio hl7 status``, the web app's ``/metrics``) read the same file.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.records import Entry, JournalRow, Receipt, StateUpdate

__all__ = [
    "Entry",
    "Journal",
    "JournalError",
    "JournalRow",
    "Receipt",
    "StateUpdate",
    "open_readonly",
]

_LOG = logging.getLogger("cmio.hl7.journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    control_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    version TEXT NOT NULL,
    patient_key TEXT,
    received_at REAL NOT NULL,
    raw BLOB NOT NULL,
    ack_code TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    error TEXT,
    result TEXT,
    processed_at REAL,
    dup_of INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_accepted
    ON messages (channel, sender, control_id) WHERE ack_code = 'AA' AND dup_of IS NULL;
CREATE INDEX IF NOT EXISTS messages_state ON messages (state, channel, id);
CREATE INDEX IF NOT EXISTS messages_received ON messages (received_at);
"""


class JournalError(RuntimeError):
    """The journal could not commit: nothing was accepted."""


@dataclass(slots=True)
class _Op:
    kind: str  # "append" | "update"
    entries: list[Entry] | None
    updates: list[StateUpdate] | None
    done: Callable[[list[Receipt] | None], None] | None


class Journal:
    """The journal file, its group-commit writer thread and read helpers.

    Args:
        path: the SQLite file (created with its folder).
        on_commit: called on the writer thread with the rows that became
            ``received`` in each durable commit (the processor's feed).
        max_batch: most operations per commit.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        on_commit: Callable[[list[JournalRow]], None] | None = None,
        max_batch: int = 512,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._local = threading.local()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0
        self.syncs = 0
        """Commits, and those among them that waited for an fsync (receipts)."""
        self._durable = True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    # -- writing ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (appends made before this wait for it)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cmio-hl7-journal", daemon=True)
            self._thread.start()

    def append(self, entries: list[Entry], done: Callable[[list[Receipt] | None], None]) -> None:
        """Queue entries; ``done(receipts)`` runs on the writer thread after the durable commit.

        ``done(None)`` means the commit failed and nothing was journaled.
        """
        self._queue.put(_Op("append", entries, None, done))

    async def append_async(self, entries: list[Entry]) -> list[Receipt]:
        """Journal entries and wait (without blocking the event loop) for their commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Receipt]] = loop.create_future()

        def done(receipts: list[Receipt] | None) -> None:
            loop.call_soon_threadsafe(_resolve, future, receipts)

        self.append(entries, done)
        return await future

    def append_sync(self, entries: list[Entry]) -> list[Receipt]:
        """Journal entries and block until they are durable."""
        event = threading.Event()
        out: list[list[Receipt] | None] = []

        def done(receipts: list[Receipt] | None) -> None:
            out.append(receipts)
            event.set()

        self.append(entries, done)
        if not event.wait(60):
            raise JournalError("the journal did not commit within 60 s")
        if out[0] is None:
            raise JournalError(f"the journal {self.path} could not commit")
        return out[0]

    def update(self, updates: list[StateUpdate], done: Callable[[], None] | None = None) -> None:
        """Queue processing outcomes; ``done()`` runs after they are durable."""
        callback = None if done is None else (lambda _r: done())  # runs even on failure
        self._queue.put(_Op("update", None, updates, callback))

    def update_sync(self, updates: list[StateUpdate]) -> None:
        """Record outcomes and block until durable."""
        event = threading.Event()
        self.update(updates, event.set)
        if not event.wait(60):
            raise JournalError("the journal did not commit within 60 s")

    def close(self) -> None:
        """Finish queued operations and close."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _run(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            batch = [op]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                self._commit(batch)
            except Exception:  # a failed commit must not leave callers waiting forever
                _LOG.exception("journal commit of %d operations failed", len(batch))
                for failed in batch:
                    if failed.done is not None:
                        failed.done(None)
            if stop:
                return

    def _commit(self, batch: list[_Op]) -> None:
        conn = self._writer
        results: list[list[Receipt]] = []
        fresh: list[JournalRow] = []
        # Receipts must be durable before their ACK: fsync. Processing outcomes need not be
        # (a lost outcome means the message is checked against the store again on restart),
        # so a commit of outcomes alone skips the fsync; the next receipt's fsync covers it.
        durable = any(op.kind == "append" for op in batch)
        if durable != self._durable:
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                if op.kind == "append":
                    assert op.entries is not None
                    results.append([self._insert(conn, e, fresh) for e in op.entries])
                else:
                    assert op.updates is not None
                    conn.executemany(
                        "UPDATE messages SET state=?, attempts=?, error=?, result=?,"
                        " next_attempt_at=?, processed_at=? WHERE id=?",
                        [
                            (
                                u.state,
                                u.attempts,
                                u.error,
                                u.result,
                                u.next_attempt_at,
                                None if u.state == "retrying" else u.at or time.time(),
                                u.id,
                            )
                            for u in op.updates
                        ],
                    )
                    results.append([])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1
        self.syncs += durable
        if fresh and self.on_commit is not None:
            self.on_commit(fresh)
        for op, receipts in zip(batch, results, strict=True):
            if op.done is not None:
                op.done(receipts)

    def _insert(self, conn: sqlite3.Connection, e: Entry, fresh: list[JournalRow]) -> Receipt:
        received_at = e.received_at or time.time()
        state = "received" if e.ack_code == "AA" else "rejected"
        sql = (
            "INSERT OR IGNORE INTO messages (channel, sender, control_id, message_type, version,"
            " patient_key, received_at, raw, ack_code, state, error)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )
        values = (
            e.channel,
            e.sender,
            e.control_id,
            e.message_type,
            e.version,
            e.patient_key,
            received_at,
            e.raw,
            e.ack_code,
            state,
            e.error,
        )
        cur = conn.execute(sql, values)
        if cur.rowcount == 1:
            row_id = int(cur.lastrowid or 0)
            if state == "received":
                fresh.append(
                    JournalRow(
                        row_id,
                        e.channel,
                        e.sender,
                        e.control_id,
                        e.message_type,
                        e.patient_key,
                        e.raw,
                        received_at,
                        payload=e.payload,
                    )
                )
            return Receipt(row_id, False, e.ack_code)
        original = conn.execute(
            "SELECT id, ack_code FROM messages WHERE channel=? AND sender=? AND control_id=?"
            " AND ack_code='AA' AND dup_of IS NULL",
            (e.channel, e.sender, e.control_id),
        ).fetchone()
        conn.execute(
            "INSERT INTO messages (channel, sender, control_id, message_type, version, patient_key,"
            " received_at, raw, ack_code, state, dup_of) VALUES (?,?,?,?,?,?,?,?,?,'duplicate',?)",
            (*values[:9], original[0]),
        )
        return Receipt(int(original[0]), True, str(original[1]))

    # -- reading ---------------------------------------------------------------------------

    def pending(self, channel: str, after_id: int = 0, limit: int = -1) -> list[JournalRow]:
        """Messages of a channel still to process, in arrival order (restart, backlog)."""
        rows = self._reader().execute(
            "SELECT id, channel, sender, control_id, message_type, patient_key, raw, received_at,"
            " attempts FROM messages WHERE state IN ('received', 'retrying') AND channel=?"
            " AND id > ? ORDER BY id LIMIT ?",
            (channel, after_id, limit),
        )
        return [_row(r) for r in rows]

    def rows(
        self, *, channel: str | None = None, states: Iterable[str] = (), ids: Iterable[int] = ()
    ) -> list[dict[str, Any]]:
        """Rows as dicts (without the raw bytes), filtered by channel, states or ids."""
        sql = (
            "SELECT id, channel, sender, control_id, message_type, version, patient_key,"
            " received_at, ack_code, state, attempts, error, result, processed_at, dup_of"
            " FROM messages WHERE 1=1"
        )
        args: list[Any] = []
        if channel is not None:
            sql += " AND channel=?"
            args.append(channel)
        states = list(states)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        ids = list(ids)
        if ids:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        cur = self._reader().execute(sql + " ORDER BY id", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur]

    def raw(self, row_id: int) -> bytes:
        """The bytes of one journaled message."""
        row = self._reader().execute("SELECT raw FROM messages WHERE id=?", (row_id,)).fetchone()
        if row is None:
            raise KeyError(row_id)
        return bytes(row[0])

    def requeue(self, ids: list[int]) -> list[JournalRow]:
        """Put parked messages back to ``received`` (durably) and return them for processing."""
        if not ids:
            return []
        self.update_sync([StateUpdate(i, "received", 0) for i in ids])
        marks = ",".join("?" * len(ids))
        rows = self._reader().execute(
            "SELECT id, channel, sender, control_id, message_type, patient_key, raw, received_at,"
            f" attempts FROM messages WHERE id IN ({marks}) ORDER BY id",
            ids,
        )
        return [_row(r) for r in rows]


def _row(r: Any) -> JournalRow:
    return JournalRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7], r[8], recovered=True)


def _resolve(future: asyncio.Future[list[Receipt]], receipts: list[Receipt] | None) -> None:
    if future.done():
        return
    if receipts is None:
        future.set_exception(JournalError("the journal could not commit"))
    else:
        future.set_result(receipts)


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a journal file (for status and metrics in other processes)."""
    uri = f"file:{Path(path).resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    return conn
