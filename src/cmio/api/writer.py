"""Group commit: write requests share one durable commit.

On SQLite a durable commit costs an fsync, and only one writer may hold the
database at a time. The :class:`GroupCommitWriter` runs write requests on one
thread; it takes every request waiting in its queue (up to ``max_batch``),
runs each through the router inside one outer transaction (each request's own
transaction becomes a SAVEPOINT, so a failing request is rolled back alone),
commits once, and only then releases the responses. A 2xx therefore still
means the write is durable, and N concurrent writers pay for one fsync.
See https://www.sqlite.org/lang_savepoint.html.

A create's or update's CPU work (parsing, validation, search-index rows) is done
by :func:`cmio.api.ops.write.prepare_write` on the writer thread for the whole
batch before its transaction opens: the SQLite write lock is then held only for
the SQL, so other server processes write meanwhile (and, on the same thread, the
lock holder never waits for the GIL behind preparation work). Requests that arrive
while a batch is being prepared join it (prepared too) before its transaction opens.
Version checks (If-Match) and everything that reads the store stay inside the
transaction. The answers of a batch reach each event loop in one wake-up.

Python releases the GIL inside every SQLite call, so the lock holder asks for the GIL
back after each statement; ``switch_interval`` can make a busy event loop hand it over
sooner (https://docs.python.org/3/library/sys.html#sys.setswitchinterval).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from dataclasses import dataclass

from cmio.api.errors import FhirError
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.ops.write import prepare_write
from cmio.api.render import json_response
from cmio.api.router import FhirRouter
from cmio.store.base import StorageFullError

__all__ = ["GroupCommitWriter"]

_LOG = logging.getLogger("cmio.api.writer")


@dataclass(slots=True)
class _Job:
    request: FhirRequest
    future: asyncio.Future[FhirResponse]
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    """A single writer thread that batches write requests into shared commits."""

    def __init__(
        self, router: FhirRouter, max_batch: int = 128, switch_interval: float | None = None
    ) -> None:
        """Batch up to ``max_batch`` writes per commit.

        ``switch_interval``: when the writer thread starts, lower the process's GIL
        switch interval (:func:`sys.setswitchinterval`) to at most this many seconds
        (None, the default: leave Python's 5 ms), so the thread holding the SQLite write
        lock gets the GIL back sooner from a busy event loop after each statement. Off by
        default: measured with ``bench/write_path.py --busy`` it did not pay (see
        docs/benchmarks.md).
        """
        self.router = router
        self.max_batch = max_batch
        self.switch_interval = switch_interval
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, request: FhirRequest) -> FhirResponse:
        """Queue a write request and wait until its batch has committed."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FhirResponse] = loop.create_future()
        self._queue.put(_Job(request, future, loop))
        return await future

    def depth(self) -> int:
        """Write requests queued and not yet taken into a batch (for ``/metrics``)."""
        return self._queue.qsize()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    if self.switch_interval is not None:
                        # The writer re-takes the GIL after every SQLite statement while it
                        # holds the write lock; a busy event loop would keep it waiting up
                        # to the interpreter's switch interval (5 ms) each time.
                        sys.setswitchinterval(min(sys.getswitchinterval(), self.switch_interval))
                    self._thread = threading.Thread(
                        target=self._run, name="cmio-writer", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Stop the writer thread after the queued requests."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            stop = self._take(batch)
            prepared = 0
            while prepared < len(batch):
                for queued in batch[prepared:]:
                    queued.request = self._prepare(queued.request)
                prepared = len(batch)
                if not stop:  # what arrived meanwhile shares the commit
                    stop = self._take(batch)
            self._commit(batch)
            if stop:
                return

    def _take(self, batch: list[_Job]) -> bool:
        """Add the queued jobs to ``batch`` (up to ``max_batch``); True at the stop mark."""
        while len(batch) < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return False
            if more is None:
                return True
            batch.append(more)
        return False

    def _prepare(self, request: FhirRequest) -> FhirRequest:
        """Parse, validate and index a create/update before the transaction opens."""
        try:
            return prepare_write(self.router.env, request)
        except Exception:  # the handler meets (and reports) the same failure
            _LOG.exception("preparing a write failed; it is handled unprepared")
            return request

    def _commit(self, batch: list[_Job]) -> None:
        repository = self.router.env.repository
        try:
            with repository.transaction():
                responses = [self.router.handle(job.request) for job in batch]
        except Exception as exc:
            _LOG.exception("group commit of %d requests failed", len(batch))
            full = isinstance(exc, StorageFullError)  # 507 Insufficient Storage (RFC 4918)
            error = FhirError(
                507 if full else 500,
                "transient" if full else "exception",
                "The write could not be committed"
                + (" (the database's disk is full)" if full else "")
                + "; nothing was stored",
            )
            responses = [json_response(job.request, error.status, error.outcome()) for job in batch]
        # one wake-up per event loop for the whole batch (a self-pipe write each), not one
        # per request
        answers: dict[asyncio.AbstractEventLoop, list[tuple[_Future, FhirResponse]]] = {}
        for job, response in zip(batch, responses, strict=True):
            answers.setdefault(job.loop, []).append((job.future, response))
        for loop, answered in answers.items():
            loop.call_soon_threadsafe(_resolve, answered)


_Future = asyncio.Future[FhirResponse]


def _resolve(answered: list[tuple[_Future, FhirResponse]]) -> None:
    for future, response in answered:
        if not future.done():
            future.set_result(response)
