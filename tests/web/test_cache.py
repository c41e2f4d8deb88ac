"""The pages' result cache: one computation per key, failures not kept, invalidation."""

from __future__ import annotations

import threading
import time

import pytest

from cmio.web.cache import ResultCache


def test_one_computation_for_concurrent_callers() -> None:
    cache = ResultCache()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 5 and len(calls) == 1
    cache.close()


def test_failures_are_raised_not_kept_and_keys_expire() -> None:
    cache = ResultCache(ttl=0.05)
    with pytest.raises(ZeroDivisionError):
        cache.get("k", lambda: 1 // 0)
    assert cache.get("k", lambda: 7) == 7
    assert cache.peek("k") == 7
    time.sleep(0.1)
    assert cache.peek("k") is None
    assert cache.get("k", lambda: 8) == 8
    cache.close()


def test_warm_and_invalidate() -> None:
    cache = ResultCache()
    cache.warm([("quality:2025", lambda: "q"), ("cost:2025", lambda: "c")])
    deadline = time.monotonic() + 5
    while cache.peek("cost:2025") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("quality:2025", lambda: "other") == "q"
    assert cache.invalidate("quality:") == 1
    assert cache.get("quality:2025", lambda: "new") == "new"
    assert cache.peek("cost:2025") == "c"
    cache.close()


def test_deferred_warming_waits_for_start_and_close_drains() -> None:
    cache = ResultCache(deferred=True)
    ran: list[str] = []
    cache.warm([("a", lambda: ran.append("a") or 1)])
    time.sleep(0.05)
    assert ran == [] and cache.peek("a") is None and not cache.started
    cache.start()
    deadline = time.monotonic() + 5
    while cache.peek("a") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == ["a"]
    gate = threading.Event()
    cache.warm([("slow", lambda: gate.wait(5)), ("queued", lambda: ran.append("queued"))])
    time.sleep(0.05)
    gate.set()
    cache.close()
    assert "queued" not in ran  # dropped at close, not run against a closing store
    assert cache.peek("queued") is None  # failed as closed, not kept
    assert cache.get("queued", lambda: 0) == 0  # a direct request still computes


def test_lookup_never_waits_and_serves_stale_while_recomputing() -> None:
    cache = ResultCache(ttl=0.3)
    gate = threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        gate.wait(5)
        return len(calls)

    started = time.perf_counter()
    assert cache.lookup("k", compute) == (False, None)  # computing in the background
    assert cache.lookup("k", compute) == (False, None)  # the same computation
    assert time.perf_counter() - started < 1
    gate.set()
    assert cache.wait_idle(5)
    assert cache.lookup("k", compute) == (True, 1) and len(calls) == 1
    gate.clear()
    time.sleep(0.35)  # stale: the old value while the new one is computed
    assert cache.lookup("k", compute) == (True, 1)
    gate.set()
    assert cache.wait_idle(5)
    assert cache.lookup("k", compute) == (True, 2)
    assert cache.prune() == 0
    time.sleep(0.35)
    assert cache.prune() == 1 and cache.peek("k") is None
    cache.close()


def test_lookup_raises_a_failure_once_then_computes_again() -> None:
    cache = ResultCache()
    outcomes = iter([RuntimeError("no"), 5])

    def compute() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError, match="no"):
        cache.lookup("k", compute, wait=5)  # failed while the page waited: shown
    assert cache.lookup("k", compute, wait=5) == (True, 5)  # the next page computes again
    cache.close()


def test_a_queued_job_runs_in_the_caller_that_needs_it() -> None:
    """A page (or the warm-up, on the worker itself) asking for a key whose background
    job is still queued runs it at once instead of waiting behind the queue."""
    cache = ResultCache()
    release = threading.Event()
    cache.warm([("busy", lambda: release.wait(5))])  # occupies the worker
    assert cache.lookup("queued", lambda: 7) == (False, None)
    started = time.perf_counter()
    assert cache.get("queued", lambda: 8) == 7  # the queued computation, run here
    assert time.perf_counter() - started < 1
    release.set()
    assert cache.wait_idle(5)
    cache.close()


def test_close_stops_a_running_job_at_its_next_step_and_waits_for_the_current_one() -> None:
    cache = ResultCache()
    gate, inside = threading.Event(), threading.Event()
    ran: list[str] = []

    def first() -> str:
        inside.set()
        gate.wait(5)
        time.sleep(0.2)  # still running when close() is called
        ran.append("first")
        return "a"

    def overview() -> list[str]:  # a warm job computing its areas through the cache
        return [cache.get("first", first), cache.get("second", lambda: ran.append("second"))]

    cache.warm([("overview", overview)])
    assert inside.wait(5)
    gate.set()
    cache.close()
    assert ran == ["first"]  # the step in progress finished before close returned
    assert cache.peek("overview") is None and cache.peek("second") is None
