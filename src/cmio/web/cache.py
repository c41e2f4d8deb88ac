"""Results that are slow to compute (measures, EHR use, cost) kept for the pages.

One :class:`ResultCache` per web app (never a module global). A key is computed once
at a time (callers asking for a key being computed wait for that computation: no
thundering herd), kept for ``ttl`` seconds, and dropped by :meth:`ResultCache.invalidate`
when the data it summarises changes.

Background warming is deferred until :meth:`ResultCache.start` (the web app calls it on
its first page request), so an API-only server, or each of many workers, does not spend
its first minute computing dashboards nobody opened.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ResultCache"]

T = TypeVar("T")


_NONE: Any = object()


@dataclass(slots=True)
class _Entry:
    future: Future[Any]
    stored: float
    job: Callable[[], None] | None = None
    """The computation while queued and not yet started (whoever needs it first runs it)."""
    stale: Any = _NONE
    """The value this entry replaces (served by :meth:`ResultCache.lookup` meanwhile)."""


class ResultCache:
    """A thread-safe single-flight memo with a time to live.

    Args:
        ttl: seconds a computed value stays fresh.
        deferred: hold :meth:`warm` jobs until :meth:`start` (False: start at once).
    """

    def __init__(self, ttl: float = 900.0, *, deferred: bool = False) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._started = not deferred
        self._closed = False
        self._pending: list[tuple[str, Callable[[], Any]]] = []
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._outstanding = 0
        self._idle = threading.Condition(self._lock)

    def _future(self, key: str, compute: Callable[[], Any], *, background: bool) -> Future[Any]:
        now = time.monotonic()
        job: Callable[[], None] | None = None
        queued = False
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not self._expired(entry, now):
                if not background and entry.job is not None:  # queued: run it here, now
                    job, entry.job = entry.job, None
                future = entry.future
            else:
                future = Future()
                stale = _NONE
                if entry is not None and entry.future.done() and not entry.future.exception():
                    stale = entry.future.result()
                entry = _Entry(future, now, stale=stale)
                self._entries[key] = entry
                entry.job = self._runner(key, entry, compute, background)
                if not background:
                    job, entry.job = entry.job, None
                queued = background
        if job is not None:
            job()
        elif queued:
            self._submit(lambda: self._claim(entry))
        return future

    def _expired(self, entry: _Entry, now: float) -> bool:
        done = entry.future.done()
        return done and (now - entry.stored > self.ttl or entry.future.exception() is not None)

    def _claim(self, entry: _Entry) -> None:
        with self._lock:
            job, entry.job = entry.job, None
        if job is not None:  # else someone needing it ran it already
            job()

    def _runner(
        self, key: str, entry: _Entry, compute: Callable[[], Any], background: bool
    ) -> Callable[[], None]:
        future = entry.future

        def run() -> None:
            # closing: no new work on a closing store, neither a queued job nor the next
            # step of a running background job (a page's own request still computes)
            if self._closed and (background or threading.current_thread() is self._worker):
                future.set_exception(RuntimeError("the result cache is closed"))
                return
            try:
                future.set_result(compute())
            except BaseException as exc:  # handed to every waiter, not lost
                future.set_exception(exc)
            with self._lock:
                entry.stored = time.monotonic()
                entry.stale = _NONE

        return run

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The value for ``key``, computing it (once, whoever asks) when missing or stale.

        Raises:
            Exception: whatever ``compute`` raised (a failure is not cached).
        """
        value: T = self._future(key, compute, background=False).result()
        return value

    def lookup(
        self, key: str, compute: Callable[[], T], wait: float = 0.0
    ) -> tuple[bool, T | None]:
        """The value for ``key`` without blocking a page on its computation.

        When missing or stale, the computation starts in the background (once, whoever
        asks) and this waits at most ``wait`` seconds for it. While a stale value is
        being recomputed, the stale value is answered.

        Returns:
            ``(True, value)`` when there is a value; ``(False, None)`` while computing.

        Raises:
            Exception: whatever ``compute`` raised (the next lookup computes again).
        """
        future = self._future(key, compute, background=True)
        if not future.done() and wait > 0:
            try:
                future.result(timeout=wait)
            except TimeoutError:
                pass
            except Exception:  # raised below
                pass
        if future.done():
            error = future.exception()
            if error is not None:
                raise error
            value: T = future.result()
            return True, value
        with self._lock:
            entry = self._entries.get(key)
            stale = entry.stale if entry is not None and entry.future is future else _NONE
        if stale is not _NONE:
            return True, stale
        return False, None

    def peek(self, key: str) -> Any | None:
        """The value if it is ready and fresh, else None (never computes, never waits)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not entry.future.done() or entry.future.exception() is not None:
            return None
        if time.monotonic() - entry.stored > self.ttl:
            return None
        return entry.future.result()

    def _submit(self, run: Callable[[], None]) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="cmio-web-cache", daemon=True
                )
                self._worker.start()
            self._outstanding += 1
        self._jobs.put(run)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            finally:
                with self._lock:
                    self._outstanding -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no background job is queued or running (True), or ``timeout``
        seconds passed (False)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def warm(self, jobs: Iterable[tuple[str, Callable[[], Any]]]) -> None:
        """Compute these keys in the background (pages then find them ready); held until
        :meth:`start` when the cache is deferred, ignored once closed."""
        with self._lock:
            if self._closed:
                return
            if not self._started:
                self._pending.extend(jobs)
                return
        for key, compute in jobs:
            self._future(key, compute, background=True)

    def start(self) -> None:
        """Release the held :meth:`warm` jobs (idempotent)."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
            pending, self._pending = self._pending, []
        self.warm(pending)

    @property
    def started(self) -> bool:
        """Whether background warming runs (see :meth:`start`)."""
        return self._started

    def prune(self) -> int:
        """Forget the values past their time to live (and failures); returns how many."""
        now = time.monotonic()
        with self._lock:
            keys = [k for k, e in self._entries.items() if self._expired(e, now)]
            for key in keys:
                del self._entries[key]
        return len(keys)

    def invalidate(self, prefix: str = "") -> int:
        """Forget every key starting with ``prefix`` (all keys by default); returns how many."""
        with self._lock:
            keys = [k for k in self._entries if k.startswith(prefix)]
            for key in keys:
                del self._entries[key]
        return len(keys)

    def close(self, timeout: float | None = None) -> None:
        """Drop queued jobs, stop a running one at its next step, and wait for the step
        in progress (``timeout`` seconds at most; None: as long as it takes), so no
        computation outlives the store it reads: closing an SQLite connection under a
        running query can crash the process."""
        with self._lock:
            self._closed = True
            self._pending = []
            worker = self._worker
        self._jobs.put(None)
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
