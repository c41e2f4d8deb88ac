"""The group-commit audit writer: batching, lingering only when it helps, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any, cast

import pytest

from cmio.security.audit import AuditLog, AuditWriter
from cmio.store import open_repository
from cmio.store._audit import AuditRow


class _Log:
    """An audit log that records the batches it is asked to append (and can fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail

    def append_now(self, events: Sequence[Mapping[str, Any]]) -> list[AuditRow]:
        if self.fail:
            raise OSError("disk full")
        self.batches.append(len(events))
        return []


def _queued(writer: AuditWriter, n: int) -> list[Future[None]]:
    """Put ``n`` records straight into the open batch (before the thread runs), as a busy
    server would."""
    futures: list[Future[None]] = []
    for i in range(n):
        futures.append(Future())
        writer._batch.records.append({"n": i})
        writer._batch.futures.append(futures[-1])
    return futures


def _run(writer: AuditWriter, close_after: float = 0.0) -> float:
    """Run the writer thread until the batch is written and it is closed; its seconds."""
    writer._busy = True
    writer._wake.release()
    if not close_after:
        writer._closed = True
    start = time.perf_counter()
    thread = threading.Thread(target=writer._run)
    thread.start()
    if close_after:
        time.sleep(close_after)
        with writer._mutex:
            writer._closed = True
            wake, writer._busy = not writer._busy, True
        if wake:
            writer._wake.release()
    thread.join(timeout=30)
    return time.perf_counter() - start


def test_waiting_records_share_one_commit_without_lingering() -> None:
    log = _Log()
    writer = AuditWriter(cast(AuditLog, log), linger=2.0)
    writer._last = 40  # the last commit held 40 records: the server is busy
    futures = _queued(writer, 30)  # ... and 30 are already waiting: commit at once
    elapsed = _run(writer)
    assert log.batches == [30]
    assert elapsed < 1.5
    assert all(f.done() and f.exception() is None for f in futures)


def test_few_waiting_after_a_large_commit_linger_for_the_rest() -> None:
    log = _Log()
    writer = AuditWriter(cast(AuditLog, log), linger=0.2)
    writer._last = 40
    futures = _queued(writer, 3)  # fewer than half of the last commit
    elapsed = _run(writer, close_after=0.05)
    assert elapsed >= 0.2
    assert log.batches == [3]
    assert all(f.done() for f in futures)


def test_max_batch_splits_commits() -> None:
    log = _Log()
    writer = AuditWriter(cast(AuditLog, log), max_batch=8, linger=0)
    futures = _queued(writer, 20)
    _run(writer)
    assert log.batches == [8, 8, 4]
    assert all(f.done() and f.exception() is None for f in futures)


def test_a_failed_commit_fails_every_waiter_of_the_batch() -> None:
    writer = AuditWriter(cast(AuditLog, _Log(fail=True)), linger=0)
    futures = _queued(writer, 5)
    _run(writer)
    for future in futures:
        assert isinstance(future.exception(), OSError)


def test_async_waiters_resolve_once_durable_and_chain_holds(tmp_path: Any) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'a.db'}")
    log = AuditLog(repo)
    writer = AuditWriter(log)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waits = [writer.submit_async({"n": i, "recorded": ""}, loop) for i in range(50)]
        await asyncio.gather(*waits)
        # every awaited record is already stored when its future resolves
        assert sum(1 for _ in log.rows()) == 50

    try:
        asyncio.run(main())
        writer.close()
        assert log.verify().ok
        with pytest.raises(RuntimeError):
            writer.submit({"late": True}).result(timeout=5)
    finally:
        repo.close()


def test_one_wake_up_and_one_future_per_loop_iteration(tmp_path: Any) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'b.db'}")
    log = AuditLog(repo)
    writer = AuditWriter(log, linger=0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waits = [writer.submit_async({"n": i, "recorded": ""}, loop) for i in range(20)]
        assert len({id(w) for w in waits}) == 1  # the loop's requests share one future
        assert writer.pending() == 20  # the idle writer is woken after this iteration
        await asyncio.gather(*waits)
        assert (writer.batches, writer.records) == (1, 20)
        # a cancelled waiter does not cancel the shared future of the others
        first = asyncio.ensure_future(_wait(writer, loop, 20))
        second = asyncio.ensure_future(_wait(writer, loop, 21))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == "durable"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert writer.records == 22

    try:
        asyncio.run(main())
        writer.close()
        assert [row.seq for row in log.rows()] == list(range(1, 23))
        assert log.verify().ok
    finally:
        repo.close()


async def _wait(writer: AuditWriter, loop: asyncio.AbstractEventLoop, n: int) -> str:
    await writer.submit_async({"n": n, "recorded": ""}, loop)
    return "durable"


def test_a_busy_writer_takes_what_arrived_during_its_commit() -> None:
    class SlowLog(_Log):
        def append_now(self, events: Sequence[Mapping[str, Any]]) -> list[AuditRow]:
            time.sleep(0.05)
            return super().append_now(events)

    log = SlowLog()
    writer = AuditWriter(cast(AuditLog, log), linger=0)
    first = writer.submit({"n": 0})  # wakes the idle writer at once (a thread's record)
    time.sleep(0.01)  # the writer is committing it
    later = [writer.submit({"n": i}) for i in range(1, 6)]  # no wake-up: the writer is busy
    for future in [first, *later]:
        future.result(timeout=5)
    writer.close()
    assert log.batches == [1, 5]


def test_a_closed_writer_refuses_records_and_starts_no_thread() -> None:
    writer = AuditWriter(cast(AuditLog, _Log()))
    writer.submit({"n": 0}).result(timeout=10)
    writer.close()
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit({"n": 1}).result(timeout=10)
    assert writer._thread is None and threading.active_count() == threads
