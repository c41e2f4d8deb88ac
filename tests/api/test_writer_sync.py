"""Pipelined durable commit: answers wait for the sync that covers their commit."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.api.writer import GroupCommitWriter
from cmio.model import Model
from cmio.store.sqlite import SqliteRepository

PATIENT: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": "Syncson"}]}


@pytest.fixture()
def env(tmp_path: Path, model: Model) -> Env:
    return build_env(f"sqlite:///{tmp_path / 'cmio.db'}", Settings(), model)


def _create() -> FhirRequest:
    return FhirRequest(
        "POST",
        "Patient",
        headers={"content-type": "application/fhir+json"},
        body=json.dumps(PATIENT).encode(),
    )


def _count(path: Path) -> int:
    """Patients a separate connection sees (committed, whether synced or not)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT count(*) FROM resource WHERE type = 'Patient'").fetchone()
    return int(row[0])


def test_answers_wait_for_the_sync_that_covers_the_commit(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = env.repository
    assert isinstance(repository, SqliteRepository)
    entered, release = threading.Event(), threading.Event()
    synced: list[int] = []
    real_sync = repository.sync

    def held_sync() -> None:
        synced.append(_count(repository.path))  # the commit happened before the sync
        entered.set()
        assert release.wait(10)
        real_sync()

    monkeypatch.setattr(repository, "sync", held_sync)
    writer = GroupCommitWriter(FhirRouter(env))

    async def run() -> int:
        task = asyncio.ensure_future(writer.submit(_create()))
        assert await asyncio.to_thread(entered.wait, 10)
        await asyncio.sleep(0.2)
        assert not task.done()  # committed, not yet synced: no answer
        release.set()
        return (await task).status

    try:
        assert asyncio.run(run()) == 201
    finally:
        writer.close()
        env.repository.close()
    assert synced and synced[0] == 1


def _watched(env: Env, seen: list[int], pipeline: bool = True) -> GroupCommitWriter:
    """A writer that records the writer connection's ``PRAGMA synchronous`` per commit."""
    repository = env.repository
    assert isinstance(repository, SqliteRepository)

    class Watched(GroupCommitWriter):
        def _commit(self, batch: list[Any]) -> None:
            conn = repository._connection()
            seen.append(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
            super()._commit(batch)

    return Watched(FhirRouter(env), pipeline=pipeline)


def test_writer_thread_commits_without_fsync_and_restores_full(env: Env) -> None:
    seen: list[int] = []
    writer = _watched(env, seen)
    try:
        assert asyncio.run(writer.submit(_create())).status == 201
    finally:
        writer.close()
    assert seen == [1]  # NORMAL on the writer's connection
    # other threads' connections keep FULL
    repository = env.repository
    assert isinstance(repository, SqliteRepository)
    assert int(repository._connection().execute("PRAGMA synchronous").fetchone()[0]) == 2
    env.repository.close()


@pytest.mark.parametrize(("code", "status"), [(errno.EIO, 500), (errno.ENOSPC, 507)])
def test_a_failed_sync_answers_errors(
    env: Env, monkeypatch: pytest.MonkeyPatch, code: int, status: int
) -> None:
    def failing_sync() -> None:
        raise OSError(code, "simulated fsync failure")

    monkeypatch.setattr(env.repository, "sync", failing_sync)
    writer = GroupCommitWriter(FhirRouter(env))

    async def run() -> list[int]:
        responses = await asyncio.gather(*(writer.submit(_create()) for _ in range(3)))
        return [r.status for r in responses]

    try:
        assert asyncio.run(run()) == [status] * 3
    finally:
        writer.close()
    env.repository.close()


def test_close_drains_pending_syncs(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers queued for a sync are released (after it) before ``close`` returns."""
    repository = env.repository
    assert isinstance(repository, SqliteRepository)
    calls: list[str] = []
    real_sync = repository.sync

    def slow_sync() -> None:
        threading.Event().wait(0.2)
        real_sync()
        calls.append("sync")

    monkeypatch.setattr(repository, "sync", slow_sync)
    writer = GroupCommitWriter(FhirRouter(env))

    async def run() -> list[int]:
        tasks = [asyncio.ensure_future(writer.submit(_create())) for _ in range(4)]
        await asyncio.sleep(0.05)
        await asyncio.to_thread(writer.close)
        assert calls  # close returned after the sync
        return [(await t).status for t in tasks]

    try:
        assert asyncio.run(run()) == [201] * 4
    finally:
        writer.close()
        env.repository.close()


def test_without_pipeline_commits_are_full(env: Env) -> None:
    seen: list[int] = []
    writer = _watched(env, seen, pipeline=False)
    try:
        assert asyncio.run(writer.submit(_create())).status == 201
    finally:
        writer.close()
        env.repository.close()
    assert seen == [2]


def test_after_a_failed_sync_the_writer_stores_nothing_more(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = env.repository
    assert isinstance(repository, SqliteRepository)
    calls: list[int] = []
    real_sync = repository.sync

    def first_fails() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EIO, "simulated fsync failure")
        real_sync()

    monkeypatch.setattr(repository, "sync", first_fails)
    writer = GroupCommitWriter(FhirRouter(env))

    async def run() -> tuple[int, list[int]]:
        first = await writer.submit(_create())
        later = await asyncio.gather(*(writer.submit(_create()) for _ in range(4)))
        return first.status, [r.status for r in later]

    try:
        first, later = asyncio.run(run())
    finally:
        writer.close()
    # The failed batch is answered 500; nothing after it is acknowledged or stored,
    # although the repository's sync would now succeed.
    assert first == 500
    assert later == [503] * 4
    assert _count(repository.path) == 1
    assert len(calls) == 1
    env.repository.close()
