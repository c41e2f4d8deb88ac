"""Group commit for audit records that do not ride on a write transaction.

Reads, searches, history, exports and operations must not answer before their
audit record is durable, yet one fsync per read would cap a server at a few
hundred reads a second. The :class:`AuditWriter` thread takes every record
waiting in its queue (up to ``max_batch``), appends them in one transaction and
only then resolves their futures: N concurrent readers share one commit. The
number of requests in flight divided by the commit time (an fsync) bounds the
throughput, so a commit starts as soon as the previous one ended whenever
records are waiting: the writer lingers (``linger``, 2 ms) only when fewer than
half as many records wait as went into the last commit (the rest of that
commit's requests are still being answered and would otherwise wait a whole
extra commit). A failed commit fails every future of the batch (the caller
answers 503).

With an :class:`~cmio.security.audit.journal.AuditJournal` (the embedded store's
default), a group is made durable by one synchronous write into the journal instead
of a store transaction, and the journal moves the records into the chain behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cmio.security.audit.chain import canonical
from cmio.security.audit.log import AuditLog
from cmio.security.audit.template import Canonical

if TYPE_CHECKING:
    from cmio.security.audit.journal import AuditJournal

__all__ = ["AuditWriter", "LoopCommitter"]

_LOG = logging.getLogger("cmio.security.audit")


@dataclass(slots=True)
class _Job:
    event: Mapping[str, Any] | Canonical
    future: Future[None] | asyncio.Future[None]
    loop: asyncio.AbstractEventLoop | None = None


class AuditWriter:
    """One thread appending queued audit records in shared commits."""

    def __init__(
        self,
        log: AuditLog,
        max_batch: int = 512,
        linger: float = 0.002,
        journal: AuditJournal | None = None,
    ) -> None:
        self.log = log
        self.journal = journal
        """Where groups are made durable (None: committed into the chain directly)."""
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last = 0  # the size of the last batch
        self.batches = 0
        """Commits so far (with :attr:`records`, the mean batch size)."""
        self.records = 0
        """Records written so far."""

    def submit(self, event: Mapping[str, Any] | Canonical) -> Future[None]:
        """Queue ``event``; the future resolves once it is durable (or fails)."""
        future: Future[None] = Future()
        if self._closed:
            future.set_exception(RuntimeError("the audit writer is closed"))
            return future
        self._ensure_started()
        self._queue.put(_Job(event, future))
        return future

    def submit_async(
        self, event: Mapping[str, Any] | Canonical, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None]:
        """Queue ``event`` for a coroutine on ``loop``: its future is settled on the loop,
        one wake-up per batch for all of the batch's waiters on that loop."""
        future: asyncio.Future[None] = loop.create_future()
        if self._closed:
            future.set_exception(RuntimeError("the audit writer is closed"))
            return future
        self._ensure_started()
        self._queue.put(_Job(event, future, loop))
        return future

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="cmio-audit", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, stop = self._drain([job])
            if not stop and self.linger > 0 and len(batch) * 2 <= self._last:
                # Busy, yet fewer than half as many waiting as went into the last commit:
                # the rest of the requests are still being answered, let them join.
                time.sleep(self.linger)
                batch, stop = self._drain(batch)
            self._last = len(batch)
            self._commit(batch)
            if stop:
                return

    def _drain(self, batch: list[_Job]) -> tuple[list[_Job], bool]:
        """``batch`` plus every queued job (up to ``max_batch``); True: close was asked."""
        while len(batch) < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if more is None:
                return batch, True
            batch.append(more)
        return batch, False

    def _commit(self, batch: list[_Job]) -> None:
        error: Exception | None = None
        try:
            if self.journal is not None:
                self.journal.append([_canonical(job.event) for job in batch])
            else:
                self.log.append_now([job.event for job in batch])
            self.batches, self.records = self.batches + 1, self.records + len(batch)
        except Exception as exc:
            _LOG.exception("writing %d audit records failed", len(batch))
            error = exc
        on_loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for job in batch:
            if job.loop is not None and isinstance(job.future, asyncio.Future):
                on_loops.setdefault(job.loop, []).append(job.future)
            elif isinstance(job.future, Future):
                if error is None:
                    job.future.set_result(None)
                else:
                    job.future.set_exception(error)
        for loop, waiters in on_loops.items():
            with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                loop.call_soon_threadsafe(_settle, waiters, error)


class _Shared(asyncio.Future[None]):
    """The future of one group: a cancelled waiter must not cancel it for the others (the
    waiter's task is cancelled once the group is written)."""

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class LoopCommitter:
    """Group commit on the event loop itself, into an audit journal: the records of the
    requests answered in one loop iteration are written together at the start of the
    next (one ``O_DSYNC`` write, during which the loop waits with the GIL released), and
    their requests share one future. No thread hand-off, no per-request future, no
    cross-thread wake-up; the cost is that the loop waits for the disk once per
    iteration that answered audited requests (a journal write takes no lock another
    request could hold, unlike a store transaction)."""

    def __init__(self, journal: AuditJournal) -> None:
        self.journal = journal
        self._open: dict[asyncio.AbstractEventLoop, tuple[list[Canonical], _Shared]] = {}

    async def wait(self, event: Canonical) -> None:
        """Return once ``event`` is durable (raises if it could not be written)."""
        loop = asyncio.get_running_loop()
        group = self._open.get(loop)
        if group is None:
            group = self._open[loop] = ([], _Shared(loop=loop))
            loop.call_soon(self._flush, loop)
        group[0].append(event)
        await group[1]

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        records, done = self._open.pop(loop)
        try:
            self.journal.append(records)
        except Exception as exc:
            _LOG.exception("writing %d audit records failed", len(records))
            done.set_exception(exc)
            return
        done.set_result(None)


def _canonical(event: Mapping[str, Any] | Canonical) -> Canonical:
    if isinstance(event, Canonical):
        return event
    return Canonical(canonical(event), str(event.get("recorded", "")))


def _settle(waiters: list[asyncio.Future[None]], error: Exception | None) -> None:
    """Resolve a batch's waiters on their event loop."""
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
