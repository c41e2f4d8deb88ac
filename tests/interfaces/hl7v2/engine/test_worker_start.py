"""The preparation worker's start: reported once ready or failed, bounded, no polling; the
engine process's GC settings (``settle_heap``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cmio.interfaces.hl7v2.engine import prepworker
from cmio.interfaces.hl7v2.engine.channels import parse_channel
from cmio.interfaces.hl7v2.engine.prepworker import PrepWorker
from tests.interfaces.hl7v2.engine.test_kill import gone


class Settled:
    """Records ``on_settled`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool, int | None]] = []
        self.event = threading.Event()

    def __call__(self, worker: PrepWorker) -> None:
        self.calls.append((worker.ready, worker.failed, worker.pid))
        self.event.set()


def start(tmp_path: Path, settled: Settled) -> PrepWorker:
    config = parse_channel({"name": "t", "journal": str(tmp_path / "journal.db")})
    worker = PrepWorker(config, asks_store=False, on_settled=settled)
    worker.start(None)
    return worker


def test_ready_is_reported_once_without_anyone_polling(tmp_path: Path) -> None:
    settled = Settled()
    worker = start(tmp_path, settled)
    try:
        assert settled.event.wait(120), "the worker did not start"
        pid = worker.pid
        assert settled.calls == [(True, False, pid)] and worker.ready and not worker.failed
    finally:
        worker.close()
    assert settled.calls == [(True, False, pid)]  # closing reports nothing more
    assert pid is not None and gone(pid)


def test_a_worker_not_ready_in_time_is_given_up_and_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepworker, "_START_SECONDS", 0.0)  # (no worker answers that fast)
    settled = Settled()
    worker = start(tmp_path, settled)
    try:
        assert settled.event.wait(30)
        pid = worker.pid
        assert settled.calls == [(False, True, pid)] and not worker.ready
        assert worker.submit([], None, []) is None  # nothing is sent to a failed worker
    finally:
        worker.close()
    assert pid is not None and gone(pid)


def test_closing_while_it_starts_reports_no_failure(tmp_path: Path) -> None:
    settled = Settled()
    worker = start(tmp_path, settled)
    pid = worker.pid
    worker.close()  # (imports take longer than this) the exited worker's pipe wakes the thread
    assert not any(failed for _, failed, _ in settled.calls) and not worker.failed
    assert pid is not None and gone(pid)


_SETTLE = """
import gc
from cmio.interfaces.hl7v2.engine.runtime import settle_heap
before = gc.get_freeze_count()
settle_heap(50_000)
print(before, gc.get_freeze_count(), *gc.get_threshold())
"""


def test_settle_heap_freezes_what_is_loaded_and_raises_the_threshold() -> None:
    # (in a child process: the settings are process-wide)
    out = subprocess.run([sys.executable, "-c", _SETTLE], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    before, frozen, young, middle, old = (int(x) for x in out)
    assert before == 0 and frozen > 10_000  # the engine's modules and their objects
    assert (young, middle, old) == (50_000, 50, 100)
