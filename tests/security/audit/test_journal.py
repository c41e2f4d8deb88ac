"""The audit journal: durable groups, moved into one chain in order, exactly once, after a
crash too (SIGKILL of the appending process), torn tails and recycled segments ignored."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
import pytest

from cmio.security.audit import AuditLog
from cmio.security.audit import journal as journal_module
from cmio.security.audit.journal import AuditJournal, move_directory
from cmio.security.audit.segment import SUFFIX, Segment, journal_directory
from cmio.security.audit.template import Canonical
from cmio.security.audit.writer import LoopCommitter
from cmio.store import open_repository


def _record(n: int) -> Canonical:
    recorded = f"2026-11-27T12:00:{n % 60:02d}.000Z"
    return Canonical(orjson.dumps({"id": f"r{n}", "n": n, "recorded": recorded}), recorded)


def _numbers(log: AuditLog) -> list[int]:
    return [orjson.loads(row.data)["n"] for row in log.rows()]


def test_groups_are_moved_in_order_once_and_the_chain_verifies(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'a.db'}")
    log = AuditLog(repo)
    assert log.journal_dir == tmp_path / "a.db-audit"
    journal = AuditJournal(log, log.journal_dir, segment_bytes=4096, interval=3600)
    try:
        for start in range(0, 200, 7):  # many groups, several segments (4 KB each)
            journal.append([_record(n) for n in range(start, min(start + 7, 200))])
        assert journal.appended == 200
        # rows() moves what waits in the journal first: nothing acknowledged is missed
        assert _numbers(log) == list(range(200))
        assert journal.move() == 0  # already moved (by rows()): not stored twice
        assert move_directory(log, log.journal_dir) == 0
        journal.append([_record(200)])
        assert journal.move() == 1
        assert _numbers(log) == list(range(201))
        report = log.verify()
        assert report.ok and report.count == 201
    finally:
        journal.close()
    assert not log.journal_dir.exists()  # every segment moved and deleted at close
    assert _numbers(log) == list(range(201))
    repo.close()


def test_full_segments_are_recycled_and_their_old_frames_ignored(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'b.db'}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(log, log.journal_dir, segment_bytes=2048, interval=3600)
    try:
        for n in range(60):
            journal.append([_record(n)])
            if n % 10 == 9:
                journal.move()  # retires full segments (one becomes the spare)
        journal.move()
        assert _numbers(log) == list(range(60))
        segments = list(log.journal_dir.glob(f"*{SUFFIX}"))
        assert len(segments) <= 2
    finally:
        journal.close()
    assert _numbers(log) == list(range(60)) and log.verify().ok
    repo.close()


def _append_then_die(db: str, count: int, acked: Connection) -> None:
    repo = open_repository(f"sqlite:///{db}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(log, log.journal_dir, segment_bytes=8192, interval=3600)
    for n in range(count):
        journal.append([_record(n)])
        acked.send(n)  # "acknowledged": the record is durable
    os.kill(os.getpid(), signal.SIGKILL)  # no move, no close


def test_a_killed_process_loses_no_acknowledged_record(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    open_repository(f"sqlite:///{db}").close()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_append_then_die, args=(str(db), 150, sender))
    child.start()
    got = [receiver.recv() for _ in range(150)]
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    directory = journal_directory(open_repository(f"sqlite:///{db}"))
    assert directory is not None and list(directory.glob(f"*{SUFFIX}"))  # left behind
    # a torn write at the tail (the crash in the middle of a frame) is ignored
    last = sorted(directory.glob(f"*{SUFFIX}"))[-1]
    with last.open("r+b") as f:
        data = f.read()
        end = data.rstrip(b"\0")
        f.seek(len(end))
        f.write(b"\x40\x00\x00\x00garbage")
    repo = open_repository(f"sqlite:///{db}")
    log = AuditLog(repo)
    restarted = AuditJournal(log, directory, interval=3600)  # as a server's start does
    assert 0 < restarted.recovered <= 150  # its mover may have moved some before the kill
    assert _numbers(log) == got == list(range(150))
    assert not list(directory.glob(f"*{SUFFIX}"))  # the dead journal was deleted
    assert log.verify().ok
    restarted.close()
    repo.close()


def test_other_stores_have_no_journal(tmp_path: Path) -> None:
    class Other:
        dialect = "postgres"

    assert journal_directory(Other()) is None


def test_a_group_larger_than_a_segment_gets_one_of_its_own(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'd.db'}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(log, log.journal_dir, segment_bytes=1024, interval=3600)
    try:
        journal.append([_record(0)])
        journal.append([_record(n) for n in range(1, 40)])  # ~3 KB at once
        journal.append([_record(40)])
        assert journal.groups == 3
        assert _numbers(log) == list(range(41))
    finally:
        journal.close()
    assert log.verify().ok
    repo.close()


def test_loop_committer_writes_one_group_per_iteration(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'e.db'}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(log, log.journal_dir, interval=3600)
    committer = LoopCommitter(journal)

    async def run() -> None:
        await asyncio.gather(*(committer.wait(_record(n)) for n in range(10)))
        assert (journal.groups, journal.appended) == (1, 10)  # one write for the iteration
        cancelled = asyncio.ensure_future(committer.wait(_record(10)))
        kept = asyncio.ensure_future(committer.wait(_record(11)))
        await asyncio.sleep(0)
        cancelled.cancel()  # one waiter gone: the group is still written for the other
        await kept
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert journal.appended == 12

        def broken(records: object) -> None:
            raise OSError("disk full")

        journal.append = broken  # type: ignore[method-assign]
        results = await asyncio.gather(
            *(committer.wait(_record(n)) for n in range(12, 14)), return_exceptions=True
        )
        assert all(isinstance(r, OSError) for r in results)

    try:
        asyncio.run(run())
        assert _numbers(log) == list(range(12))
    finally:
        del journal.append
        journal.close()
    repo.close()


def test_a_full_size_spare_is_made_while_the_first_small_segment_is_current(
    tmp_path: Path,
) -> None:
    """Under load the writer must not keep making small segments itself: once the first
    (small) segment is in use, the mover makes a full-size spare, and the next rotation
    takes it."""
    repo = open_repository(f"sqlite:///{tmp_path / 'e.db'}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(
        log, log.journal_dir, segment_bytes=64 << 10, first_bytes=4096, interval=3600
    )
    try:
        journal.append([_record(0)])  # the first (small) segment is made while it waits
        current = journal._current
        assert current is not None and current.size < 64 << 10
        deadline = time.monotonic() + 30
        while journal._spare is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the mover, woken by the rotation, makes the spare
        spare = journal._spare
        assert spare is not None and spare.size == 64 << 10
        n = 1
        while journal._current is current:  # fill the small segment until it rotates
            journal.append([_record(n)])
            n += 1
        assert journal._current is spare
        assert _numbers(log) == list(range(n))
    finally:
        journal.close()
    repo.close()


def test_the_mover_takes_groups_from_memory_and_reads_back_only_what_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 'f.db'}")
    log = AuditLog(repo)
    assert log.journal_dir is not None
    journal = AuditJournal(log, log.journal_dir, interval=3600)
    journal._stopped = True  # no mover thread: this test moves
    reads: list[tuple[int, int]] = []
    frames = Segment.frames

    def counted(segment: Segment, start: int, end: int) -> tuple[list[tuple[int, Canonical]], int]:
        reads.append((start, end))
        return frames(segment, start, end)

    monkeypatch.setattr(Segment, "frames", counted)
    try:
        for start in range(0, 50, 5):
            journal.append([_record(n) for n in range(start, start + 5)])
        assert journal.move() == 50 and reads == []  # from memory
        journal.append([_record(50)])

        def failing(*args: object) -> int:
            raise OSError("database is locked")

        with monkeypatch.context() as patch:
            patch.setattr(journal_module, "_move", failing)
            with pytest.raises(OSError):
                journal.move()
        journal.append([_record(51)])
        assert journal.move() == 2 and len(reads) == 1  # the lost group read back
        journal.held = 3  # more than held: the groups are not kept, the mover reads
        journal.append([_record(n) for n in range(52, 56)])
        assert journal.move() == 4 and len(reads) == 2
        journal.append([_record(56)])
        assert journal.move() == 1 and len(reads) == 2
        assert _numbers(log) == list(range(57))
    finally:
        journal.close()
    assert log.verify().ok
    repo.close()
