"""Group commit for audit records that do not ride on a write transaction.

Reads, searches, history, exports and operations must not answer before their
audit record is durable, yet one fsync per read would cap a server at a few
hundred reads a second. The :class:`AuditWriter` thread writes every record that
arrived since its last write in one commit, and only then answers their requests:
N concurrent readers share one commit.

The hand-off costs little per record: a request appends its (already serialized)
record to the open batch under a lock and awaits the batch's one future for its
event loop (no queue item, future or wake-up of its own). An idle writer is woken
once, at the end of the loop iteration that opened the batch (so the requests
answered in that iteration share the write); a busy one takes the next batch as
soon as its write returned. Once a batch is durable the writer settles each
loop's future with one ``call_soon_threadsafe``. The number of requests in flight
divided by the commit time (an fsync) bounds the throughput. Without a journal
(a commit into the store) the writer lingers (``linger``, 2 ms) when fewer than
half as many records wait as went into the last commit (the rest of that commit's
requests are still being answered and would otherwise wait a whole extra commit).
A failed commit fails every waiter of the batch (the caller answers 503).

With an :class:`~cmio.security.audit.journal.AuditJournal` (the embedded store's
default), a group is made durable by one synchronous write into the journal instead
of a store transaction, and the journal moves the records into the chain behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from cmio.security.audit.chain import canonical
from cmio.security.audit.log import AuditLog
from cmio.security.audit.template import Canonical

if TYPE_CHECKING:
    from cmio.security.audit.journal import AuditJournal

__all__ = ["AuditWriter", "LoopCommitter"]

_LOG = logging.getLogger("cmio.security.audit")


class _Batch:
    """The records that arrived since the writer's last take, and who waits for them."""

    __slots__ = ("futures", "records", "waiters")

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any] | Canonical] = []
        self.waiters: dict[asyncio.AbstractEventLoop, _Shared] = {}
        """One future per event loop, shared by that loop's requests."""
        self.futures: list[Future[None]] = []
        """The futures of threads waiting (:meth:`AuditWriter.submit`)."""


class AuditWriter:
    """One thread appending the records that arrived meanwhile in shared commits.

    Args:
        log: the chain (records commit into it directly when there is no journal).
        max_batch: most records per commit; a larger batch is written in several
            commits, its waiters answered after the last.
        linger: seconds to wait for more records before a small commit (see the
            module docstring); 0 with a journal.
        journal: where groups are made durable (None: committed into the chain directly).
    """

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
        self._batch = _Batch()
        self._mutex = threading.Lock()  # guards _batch, _busy and _closed
        self._wake = threading.Lock()  # released once to wake an idle writer
        self._wake.acquire()
        self._busy = False  # the writer is writing or woken; else it waits on _wake
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last = 0  # the size of the last commit
        self.batches = 0
        """Commits so far (with :attr:`records`, the mean batch size)."""
        self.records = 0
        """Records written so far."""

    def pending(self) -> int:
        """Records waiting for the next commit."""
        return len(self._batch.records)

    def submit(self, event: Mapping[str, Any] | Canonical) -> Future[None]:
        """Queue ``event``; the future resolves once it is durable (or fails)."""
        future: Future[None] = Future()
        if self._thread is None:
            self._start()
        with self._mutex:
            if self._closed:
                future.set_exception(RuntimeError("the audit writer is closed"))
                return future
            batch = self._batch
            batch.records.append(event)
            batch.futures.append(future)
            if not self._busy:
                self._busy = True
                self._wake.release()
        return future

    def submit_async(
        self, event: Mapping[str, Any] | Canonical, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None]:
        """Queue ``event`` for a coroutine on ``loop``: the returned future (shared by the
        loop's requests of the same batch; cancelling it does nothing) is settled on the
        loop once the record is durable."""
        if self._thread is None:
            self._start()
        with self._mutex:
            if self._closed:
                closed: asyncio.Future[None] = loop.create_future()
                closed.set_exception(RuntimeError("the audit writer is closed"))
                return closed
            batch = self._batch
            batch.records.append(event)
            waiter = batch.waiters.get(loop)
            if waiter is not None:
                return waiter
            waiter = batch.waiters[loop] = _Shared(loop=loop)
            kick = not self._busy
        if kick:  # wake the writer once this loop iteration's requests have joined
            loop.call_soon(self._kick)
        return waiter

    def _kick(self) -> None:
        with self._mutex:
            if self._busy or not self._batch.records:
                return
            self._busy = True
        self._wake.release()

    def _start(self) -> None:
        with self._mutex:  # not after close(): the caller then answers "closed"
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="cmio-audit", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._mutex:
            self._closed = True
            thread, wake = self._thread, not self._busy
            if wake:
                self._busy = True
        if thread is not None:
            if wake:
                self._wake.release()
            thread.join(timeout=30)
            self._thread = None

    def _take(self) -> _Batch | None:
        """The open batch (a new one opens); None when it is empty (the writer goes idle)."""
        with self._mutex:
            batch = self._batch
            if not batch.records:
                self._busy = False
                return None
            self._batch = _Batch()
            return batch

    def _run(self) -> None:
        while True:
            self._wake.acquire()
            while (batch := self._take()) is not None:
                batches = [batch]
                if self.linger > 0 and len(batch.records) * 2 <= self._last:
                    # Busy, yet fewer than half as many waiting as went into the last
                    # commit: the rest of the requests are still being answered.
                    time.sleep(self.linger)
                    with self._mutex:
                        if self._batch.records:
                            batches.append(self._batch)
                            self._batch = _Batch()
                self._last = sum(len(b.records) for b in batches)
                self._commit(batches)
            if self._closed:
                return

    def _commit(self, batches: list[_Batch]) -> None:
        records = [record for batch in batches for record in batch.records]
        error: Exception | None = None
        try:
            for at in range(0, len(records), self.max_batch):
                group = records[at : at + self.max_batch]
                if self.journal is not None:
                    self.journal.append([_canonical(event) for event in group])
                else:
                    self.log.append_now(group)
                self.batches, self.records = self.batches + 1, self.records + len(group)
        except Exception as exc:
            _LOG.exception("writing %d audit records failed", len(records))
            error = exc
        for batch in batches:
            for future in batch.futures:
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
            for loop, waiter in batch.waiters.items():
                with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                    loop.call_soon_threadsafe(_settle, waiter, error)


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


def _settle(waiter: asyncio.Future[None], error: Exception | None) -> None:
    """Resolve a batch's future on its event loop (which wakes every request awaiting it)."""
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)
