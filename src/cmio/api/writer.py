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

Pipelined durability. When the repository can defer its fsync (``unsynced_commits``
and ``sync``, as :class:`cmio.store.sqlite.SqliteRepository` does), the writer thread
commits without waiting for the fsync (SQLite WAL with ``synchronous=NORMAL``) and
starts on the next batch at once, while a second thread, ``cmio-writer-sync``, runs one
``sync()`` (an fsync of the write-ahead log) covering every batch committed before it
began. Only after that sync returns are the batches' answers released, in commit order,
so a 2xx still means the write survives a power cut. If the sync fails, the batches it
covered are answered 500 (507 when the disk is full) instead of their 2xx/3xx: their
writes are visible but may not survive a crash. The writer is then fail-stop: after a
failed fsync the kernel may have dropped the pages it could not write, so a later fsync
that succeeds proves nothing, and every later commit is answered as not durable and every
later write 503 without being stored, until the server is restarted. Readers may see a
commit during the few milliseconds before its sync returns (its writer has no answer yet).
Closing the writer drains the pending syncs first. On a repository without these methods (PostgreSQL, whose commits are
durable when they return) each batch is answered right after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import queue
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@dataclass(slots=True)
class _Committed:
    """A batch's answers, held until a sync covers its commit."""

    batch: list[_Job]
    responses: list[FhirResponse]
    stored: bool  # the transaction committed (False: rolled back, nothing to sync)


@runtime_checkable
class _DeferredSync(Protocol):
    """A repository whose commits can skip the fsync until an explicit ``sync()``."""

    def unsynced_commits(self) -> contextlib.AbstractContextManager[None]: ...

    def sync(self) -> None: ...


class GroupCommitWriter:
    """A single writer thread that batches write requests into shared commits."""

    def __init__(
        self,
        router: FhirRouter,
        max_batch: int = 128,
        switch_interval: float | None = None,
        pipeline: bool = True,
    ) -> None:
        """Batch up to ``max_batch`` writes per commit.

        ``switch_interval``: when the writer thread starts, lower the process's GIL
        switch interval (:func:`sys.setswitchinterval`) to at most this many seconds
        (None, the default: leave Python's 5 ms), so the thread holding the SQLite write
        lock gets the GIL back sooner from a busy event loop after each statement. Off by
        default: measured with ``bench/write_path.py --busy`` it did not pay (see
        docs/benchmarks.md).

        ``pipeline``: when the repository supports it, fsync on a second thread while the
        next batch commits (see the module docstring); False: fsync inside each commit.
        """
        self.router = router
        self.max_batch = max_batch
        self.switch_interval = switch_interval
        self.pipeline = pipeline
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._syncs: queue.SimpleQueue[_Committed | None] | None = None
        self._syncer: threading.Thread | None = None
        self._lock = threading.Lock()
        #: The first failed sync: from then on no write is acknowledged (fail-stop).
        self._failed: BaseException | None = None

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
                    repository = self.router.env.repository
                    if self.pipeline and isinstance(repository, _DeferredSync):
                        self._syncs = queue.SimpleQueue()
                        self._syncer = threading.Thread(
                            target=self._sync_loop,
                            args=(repository, self._syncs),
                            name="cmio-writer-sync",
                            daemon=True,
                        )
                        self._syncer.start()
                    self._thread = threading.Thread(
                        target=self._run, name="cmio-writer", daemon=True
                    )
                    self._thread.start()

    def close(self) -> None:
        """Stop the writer thread after the queued requests, then drain pending syncs."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        if self._syncer is not None:
            self._syncer.join(timeout=30)
            self._syncer = None

    def _run(self) -> None:
        syncs = self._syncs
        try:
            with contextlib.ExitStack() as stack:
                if syncs is not None:
                    repository = self.router.env.repository
                    assert isinstance(repository, _DeferredSync)
                    try:
                        stack.enter_context(repository.unsynced_commits())
                    except Exception:  # commits then fsync themselves; answers still wait
                        _LOG.exception("deferring the writer's fsync failed")
                self._batches()
        finally:
            if syncs is not None:
                syncs.put(None)  # the sync thread stops after the batches before it

    def _batches(self) -> None:
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
        stored = False
        if self._failed is not None:  # fail-stop: nothing more is written
            refused = "Writes are refused since an fsync of the database failed; nothing was "
            refused += "stored (check the disk, then restart the server)"
            _release([_Committed(batch, _errors(batch, 503, refused), False)])
            return
        try:
            with repository.transaction():
                responses = [self.router.handle(job.request) for job in batch]
            stored = True
        except BaseException as exc:  # a batch is always answered (even CancelledError)
            _LOG.exception("group commit of %d requests failed", len(batch))
            full = isinstance(exc, StorageFullError)  # 507 Insufficient Storage (RFC 4918)
            text = "The write could not be committed"
            text += (" (the database's disk is full)" if full else "") + "; nothing was stored"
            responses = _errors(batch, 507 if full else 500, text)
        committed = _Committed(batch, responses, stored)
        if self._syncs is not None:
            self._syncs.put(committed)  # answered once a sync covers the commit
        else:
            _release([committed])

    def _sync_loop(
        self, repository: _DeferredSync, syncs: queue.SimpleQueue[_Committed | None]
    ) -> None:
        """Sync thread: one ``sync()`` for every batch committed so far, then their answers."""
        while True:
            item = syncs.get()
            pending: list[_Committed] = []
            stop = item is None
            if item is not None:
                pending.append(item)
            while not stop:
                try:
                    item = syncs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    pending.append(item)
            if any(done.stored for done in pending):
                if self._failed is None:
                    try:
                        repository.sync()  # covers every commit made before this call
                    except BaseException as exc:  # the batches are answered in any case
                        _LOG.exception("fsync after %d committed batches failed", len(pending))
                        # After a failed fsync the kernel may have dropped the dirty pages
                        # it could not write, and a later fsync can succeed without them:
                        # no later commit is trusted either (as PostgreSQL stops).
                        self._failed = exc
                failed = self._failed
                if failed is not None:
                    for done in pending:
                        if done.stored:
                            done.responses = _not_durable(done, failed)
            _release(pending)
            if stop:
                return


_Future = asyncio.Future[FhirResponse]


def _not_durable(done: _Committed, exc: BaseException) -> list[FhirResponse]:
    """The answers of a committed batch whose fsync failed: errors instead of successes."""
    full = isinstance(exc, StorageFullError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )
    text = "The write was committed but could not be made durable"
    text += " (the database's disk is full)" if full else " (fsync failed)"
    text += "; it may be lost after a crash"
    errors = _errors(done.batch, 507 if full else 500, text)
    return [
        response if response.status >= 400 else error
        for response, error in zip(done.responses, errors, strict=True)
    ]


def _errors(batch: list[_Job], status: int, text: str) -> list[FhirResponse]:
    """One OperationOutcome answer per job: ``transient`` for 503/507, else ``exception``."""
    error = FhirError(status, "transient" if status in (503, 507) else "exception", text)
    return [json_response(job.request, error.status, error.outcome()) for job in batch]


def _release(committed: Iterable[_Committed]) -> None:
    """Answer the batches in order, with one wake-up per event loop (a self-pipe write
    each), not one per request."""
    answers: dict[asyncio.AbstractEventLoop, list[tuple[_Future, FhirResponse]]] = {}
    for done in committed:
        for job, response in zip(done.batch, done.responses, strict=True):
            answers.setdefault(job.loop, []).append((job.future, response))
    for loop, answered in answers.items():
        with contextlib.suppress(RuntimeError):  # that loop was closed: nobody waits
            loop.call_soon_threadsafe(_resolve, answered)


def _resolve(answered: list[tuple[_Future, FhirResponse]]) -> None:
    for future, response in answered:
        if not future.done():
            future.set_result(response)
