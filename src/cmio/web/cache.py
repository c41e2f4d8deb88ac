"""Results that are slow to compute (measures, EHR use, cost) kept for the pages.

One :class:`ResultCache` per web app (never a module global). A key is computed once
at a time (callers asking for a key being computed wait for that computation: no
thundering herd), kept for ``ttl`` seconds, and dropped by :meth:`ResultCache.invalidate`
when the data it summarises changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ResultCache"]

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    future: Future[Any]
    stored: float


class ResultCache:
    """A thread-safe single-flight memo with a time to live.

    Args:
        ttl: seconds a computed value stays fresh.
        workers: threads for :meth:`warm` (background computations).
    """

    def __init__(self, ttl: float = 900.0, workers: int = 1) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cmio-web-cache")

    def _future(self, key: str, compute: Callable[[], Any], *, background: bool) -> Future[Any]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not (
                entry.future.done()
                and (now - entry.stored > self.ttl or entry.future.exception() is not None)
            ):
                return entry.future
            future: Future[Any] = Future()
            self._entries[key] = _Entry(future, now)

        def run() -> None:
            try:
                future.set_result(compute())
            except BaseException as exc:  # handed to every waiter, not lost
                future.set_exception(exc)
            with self._lock:
                current = self._entries.get(key)
                if current is not None and current.future is future:
                    current.stored = time.monotonic()

        if background:
            self._pool.submit(run)
        else:
            run()
        return future

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The value for ``key``, computing it (once, whoever asks) when missing or stale.

        Raises:
            Exception: whatever ``compute`` raised (a failure is not cached).
        """
        value: T = self._future(key, compute, background=False).result()
        return value

    def peek(self, key: str) -> Any | None:
        """The value if it is ready and fresh, else None (never computes, never waits)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not entry.future.done() or entry.future.exception() is not None:
            return None
        if time.monotonic() - entry.stored > self.ttl:
            return None
        return entry.future.result()

    def warm(self, jobs: Iterable[tuple[str, Callable[[], Any]]]) -> None:
        """Start computing these keys in the background (pages then find them ready)."""
        for key, compute in jobs:
            self._future(key, compute, background=True)

    def invalidate(self, prefix: str = "") -> int:
        """Forget every key starting with ``prefix`` (all keys by default); returns how many."""
        with self._lock:
            keys = [k for k in self._entries if k.startswith(prefix)]
            for key in keys:
                del self._entries[key]
        return len(keys)

    def close(self) -> None:
        """Stop the background threads (running computations finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
