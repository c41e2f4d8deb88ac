"""The folder-drop source and the MLLP forwarding destination."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.mllp import frame
from cmio.interfaces.hl7v2.engine.processor import Processor
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.engine.server import Channel
from cmio.testing.server import free_port
from tests.interfaces.hl7v2.engine.conftest import (
    FakeStore,
    RunningEngine,
    channel,
    echo_mapper,
    oru,
)


def test_folder_drop_journals_every_message_once(tmp_path: Path, store: FakeStore) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.hl7").write_bytes((oru("F1") + oru("F2")).replace(b"\r", b"\n"))
    (inbox / "b.hl7").write_bytes(frame(oru("F3")) + frame(oru("F1")))  # F1 again: duplicate
    (inbox / "skip.txt").write_text("not a feed", encoding="utf-8")
    config = channel(tmp_path, source={"type": "folder", "path": str(inbox), "poll_seconds": 0.05})
    engine = Engine([config], store, mapper=echo_mapper)
    with RunningEngine(engine):
        deadline = time.monotonic() + 20
        while list(inbox.glob("*.hl7")):
            assert time.monotonic() < deadline, "files were not picked up"
            time.sleep(0.05)
        assert engine.drain(20)
        rows = engine.journal.rows()
    assert sorted(store.applied) == ["F1", "F2", "F3"]
    assert [r["state"] for r in rows].count("duplicate") == 1
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.hl7", "b.hl7"]
    assert (inbox / "skip.txt").exists()


def test_forward_to_another_mllp_endpoint(
    tmp_path: Path, running: RunningEngine, store: FakeStore
) -> None:
    """Channel A forwards the original message to engine B, which ACKs and processes it."""
    forward = tmp_path / "a"
    forward.mkdir()
    config = channel(
        forward, destinations=[{"type": "mllp", "host": "127.0.0.1", "port": running.port}]
    )
    journal = Journal(config.journal)
    journal.start()
    processor = Processor(config, journal, None, mapper=echo_mapper)
    Channel(config, journal).receive_sync(oru("FW1"))
    processor.recover()
    processor.start()
    assert processor.drain(20)
    processor.stop()
    assert journal.rows()[0]["state"] == "processed"
    journal.close()
    assert running.engine.drain(10)
    assert store.applied == ["FW1"]


def test_forward_to_a_dead_endpoint_retries_then_parks(tmp_path: Path) -> None:
    config = channel(
        tmp_path,
        destinations=[{"type": "mllp", "host": "127.0.0.1", "port": free_port()}],
        retry={"max_attempts": 3, "initial_delay": 0.02},
    )
    journal = Journal(config.journal)
    journal.start()
    processor = Processor(config, journal, None, mapper=echo_mapper)
    Channel(config, journal).receive_sync(oru("DEAD"))
    processor.recover()
    processor.start()
    assert processor.drain(20)
    processor.stop()
    (row,) = journal.rows()
    journal.close()
    assert row["state"] == "error" and row["attempts"] == 3
    assert "gave up after 3 attempts" in row["error"] and "refused" in row["error"].lower()


def test_one_journal_per_engine(tmp_path: Path, store: FakeStore) -> None:
    first = channel(tmp_path / "a")
    second = channel(tmp_path / "b", name="other")
    with pytest.raises(ValueError, match="different journals"):
        Engine([first, second], store, mapper=echo_mapper)
    with pytest.raises(ValueError, match="names must differ"):
        Engine([first, first], store, mapper=echo_mapper)
    engine = Engine([first, second], store, mapper=echo_mapper, journal=tmp_path / "j.db")
    engine.close()
