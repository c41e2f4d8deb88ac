"""A durable journal for the audit records of reads, moved into the hash chain behind.

A read's response may leave only once its audit record is durable (issue 9, item 3).
Committing each group of records into the store's ``audit_log`` table costs a SQLite
transaction (several calls, each giving up and taking back the GIL, and the WAL
fsync) per group. :class:`AuditJournal` makes a group durable with one ``pwrite`` on an
``O_DSYNC`` descriptor into a pre-zeroed segment file (:mod:`cmio.security.audit.segment`),
and a background thread moves the records into ``audit_log`` in journal order, chained
like any other record (:func:`cmio.security.audit.chain.chain_rows`), so there is still
one verifiable chain. The mover takes the records of the groups written since its last
move from memory (what the writer has just made durable), not by reading its own
segments back; it reads a segment only for what it does not hold (after a failed move,
or beyond ``held`` records) and at start, for a crashed process's journal.

Moving is idempotent: the last moved sequence number of each journal is kept in the
store (``job_state`` ``audit-journal:<id>``) and advanced in the same transaction as
the rows, so a crash between the two, or two processes moving the same segment, never
stores a record twice. At start (and before the trail is searched or verified) every
segment in the directory is moved: a crashed process's journal, whose lock is free, is
moved and deleted, so no acknowledged record is lost. Records wait in the journal at
most ``interval`` seconds (default 0.1 s) before they are in ``audit_log``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cmio.security.audit.segment import (
    HEADER_SIZE,
    SUFFIX,
    Segment,
    frames_size,
    read_frames,
    read_header,
)
from cmio.security.audit.template import Canonical

if TYPE_CHECKING:
    from cmio.security.audit.log import AuditLog

__all__ = ["AuditJournal", "move_directory"]

_LOG = logging.getLogger("cmio.security.audit")
_MARK = "audit-journal:"
_STALE_SPARE = 60.0  # seconds before a half-made spare of a dead process is removed


@dataclass(slots=True)
class _Group:
    """One durable write: its segment, byte range and records (numbered from ``first``)."""

    segment: Segment
    start: int
    end: int
    first: int
    records: Sequence[Canonical]


def _mark(tx_state: str | None) -> int:
    return int(json.loads(tx_state)["seq"]) if tx_state else 0


def _move(log: AuditLog, jid: str, frames: Sequence[tuple[int, Canonical]]) -> int:
    """Chain the frames of journal ``jid`` not stored yet; returns how many were stored."""
    if not frames:
        return 0
    with log.repository.transaction() as tx:
        done = _mark(tx.job_state(_MARK + jid))
        todo = [record for seq, record in frames if seq > done]
        if not todo:
            return 0
        if frames[0][0] > done + 1:  # cannot happen unless a segment file was removed
            _LOG.error(
                "audit journal %s: records %d-%d are missing", jid, done + 1, frames[0][0] - 1
            )
        log.append(tx, todo)
        tx.set_job_state(_MARK + jid, json.dumps({"seq": frames[-1][0]}))
    return len(todo)


def move_directory(log: AuditLog, directory: Path, keep: frozenset[Path] = frozenset()) -> int:
    """Move every segment's records in ``directory`` into the chain (any process's: the
    move is idempotent); delete the segments of journals no process holds any more (a
    crashed or stopped server's), except ``keep``. Returns the records stored."""
    moved = 0
    if not directory.is_dir():
        return 0
    for path in sorted(directory.iterdir()):  # by journal id, then first seq
        if path in keep:
            continue
        if path.suffix == ".tmp":  # a spare; left over if its maker died
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > _STALE_SPARE:
                    _delete_if_free(path)
            continue
        if path.suffix != SUFFIX:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # moved and deleted meanwhile by its owner
        try:
            free = _try_lock(fd)
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
            header = read_header(data)
            if header is None:
                continue
            jid, salt, first = header
            frames, _ = read_frames(data, salt, first)
            moved += _move(log, jid, frames)
            if free:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return moved


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _delete_if_free(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        if _try_lock(fd):
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


class AuditJournal:
    """This process's audit journal in ``directory`` (see the module docstring).

    Args:
        log: the chain the records are moved into.
        directory: where the segments live (beside the database).
        segment_bytes: size of a segment file made ahead by the background thread (one
            is recycled as the next spare once moved).
        first_bytes: size of a segment made while a group waits (the first one, or when
            no spare is ready): small, since zero-filling it delays that group.
        interval: seconds between moves into the chain.
        held: most records kept in memory for the next move (beyond them, the mover
            reads its segments back).
    """

    def __init__(
        self,
        log: AuditLog,
        directory: Path,
        segment_bytes: int = 8 << 20,
        first_bytes: int = 256 << 10,
        interval: float = 0.1,
        held: int = 1 << 16,
    ) -> None:
        self.log = log
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.first_bytes = min(first_bytes, segment_bytes)
        self.interval = interval
        self.jid = f"{time.time_ns():016x}-{os.getpid()}-{os.urandom(3).hex()}"
        self._current: Segment | None = None
        self._sealed: list[Segment] = []  # full, not yet moved entirely
        self._spare: Segment | None = None
        self._moved: dict[Path, int] = {}  # segment -> offset moved up to
        self._groups: list[_Group] = []  # written since the last move, in order
        self._held, self.held = 0, held
        self._lock = threading.Lock()  # segment hand-over between writer and mover
        self._move_lock = threading.Lock()  # one move at a time in this process
        self._append_lock = threading.Lock()  # appenders: the writer thread, event loops
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.appended = 0
        """Records made durable in the journal."""
        self.groups = 0
        """Writes that made them durable (records per write: ``appended / groups``)."""
        self.moved = 0
        """Records moved into the chain by this process."""
        directory.mkdir(parents=True, exist_ok=True)
        self.recovered = move_directory(log, directory)
        """Records of earlier (crashed) journals moved at start."""

    def append(self, records: Sequence[Canonical]) -> None:
        """Make ``records`` durable: one synchronous write (from any thread; a group at a
        time, in order)."""
        need = frames_size(records)
        with self._append_lock:
            segment = self._current
            if segment is None or not segment.room(need):
                segment = self._rotate(need)
            start, first = segment.offset, segment.next_seq
            segment.append(records)
            group = _Group(segment, start, segment.offset, first, records)
            with self._lock:
                if self._held + len(records) <= self.held:
                    self._groups.append(group)
                    self._held += len(records)
                else:  # too many unmoved (moves failing?): the mover reads the segments
                    self._groups, self._held = [], 0
            self.appended += len(records)
            self.groups += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cmio-audit-move", daemon=True)
            self._thread.start()

    def _rotate(self, need: int) -> Segment:
        with self._lock:
            old, spare = self._current, self._spare
            self._spare = None
        if spare is not None and spare.size - HEADER_SIZE - 16 < need:
            spare.close(unlink=True)  # a group larger than a segment: a segment of its own
            spare = None
        if spare is None:
            spare = Segment.create(self.directory, max(self.first_bytes, 2 * need + 4096))
        first = old.next_seq if old is not None else 1
        spare.start(self.directory, self.jid, first)
        with self._lock:
            if old is not None:
                self._sealed.append(old)
            self._current = spare
        self._wake.set()
        return spare

    def move(self) -> int:
        """Move this process's durable records into the chain; returns how many."""
        with self._move_lock:
            with self._lock:
                segments = [*self._sealed, *([self._current] if self._current else [])]
                groups, self._groups, self._held = self._groups, [], 0
            moved = 0
            for segment in segments:
                start = self._moved.get(segment.path, HEADER_SIZE)
                mine = [g for g in groups if g.segment is segment and g.end > start]
                if mine and mine[0].start == start:  # from memory (consecutive groups)
                    frames = [(g.first + i, r) for g in mine for i, r in enumerate(g.records)]
                    upto = mine[-1].end
                else:  # read back what was written before the groups held
                    end = max(segment.offset, mine[-1].end if mine else 0)
                    if end <= start:
                        continue
                    frames, upto = segment.frames(start, end)
                moved += _move(self.log, self.jid, frames)
                self._moved[segment.path] = upto
            self.moved += moved
            self._retire()
            return moved

    def _retire(self) -> None:
        """Recycle (as the spare) or delete the sealed segments that are moved entirely."""
        with self._lock:
            done = [s for s in self._sealed if self._moved.get(s.path, 0) >= s.offset]
            self._sealed = [s for s in self._sealed if s not in done]
        for segment in done:
            self._moved.pop(segment.path, None)
            with self._lock:
                if self._spare is None and segment.size == self.segment_bytes:
                    tmp = self.directory / f".{os.getpid()}-{os.urandom(6).hex()}.tmp"
                    os.replace(segment.path, tmp)  # out of the sweep's sight until restarted
                    segment.path = tmp
                    self._spare = segment
                    continue
            segment.close(unlink=True)

    def flush(self) -> int:
        """Move every journal's records in the directory (this and other processes'), so the
        chain holds every record acknowledged so far; returns how many were moved."""
        moved = self.move()
        with self._lock:
            own = frozenset(s.path for s in [*self._sealed, self._current] if s is not None)
        return moved + move_directory(self.log, self.directory, own)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self.move()
                current = self._current
                # A full-size spare once the current segment is half full, or at once while
                # a small one is current (the first, or one the writer had to make without a
                # spare): else, under load, the writer keeps making small ones itself, each
                # zero-filled and synced while its group waits, until a wake-up happens to
                # find one half full.
                if (
                    self._spare is None
                    and current is not None
                    and (current.offset * 2 > current.size or current.size < self.segment_bytes)
                ):
                    spare = Segment.create(self.directory, self.segment_bytes)
                    with self._lock:
                        if self._spare is None:
                            self._spare, spare = spare, None  # type: ignore[assignment]
                    if spare is not None:
                        spare.close(unlink=True)
            except Exception:  # the records stay in the journal; retried next time
                _LOG.exception("moving audit records into the chain failed")

    def close(self) -> None:
        """Move what is left into the chain, then delete this journal's files."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self.move()
        except Exception:  # kept on disk: the next start moves them
            _LOG.exception("moving audit records into the chain at close failed")
            return
        with self._lock:
            segments = [*self._sealed, *([self._current] if self._current else [])]
            spare, self._spare, self._current, self._sealed = self._spare, None, None, []
        for segment in segments:
            segment.close(unlink=True)
        if spare is not None:
            spare.close(unlink=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only when no other process's journal is left
