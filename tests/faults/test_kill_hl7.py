"""SIGKILL of ``cmio hl7 listen`` while an MLLP sender streams ORU messages.

Every message ACKed AA is journaled once and, after a clean last run drains the
journal, applied once; ``cmio doctor --full --journal`` then finds the store sound
and every processed message's resources in it.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmio.admin.doctor import diagnose
from cmio.cli.main import app
from cmio.indexing import SearchIndexer
from cmio.testing.server import free_port
from tests.interfaces.hl7v2.engine.test_kill import Sender, Zygote, start

from .conftest import LOOPS, assert_doctor_ok
from .test_kill_bulk import count


def waiting(journal: Path) -> int:
    with sqlite3.connect(journal) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM messages WHERE state IN ('received', 'retrying')"
            ).fetchone()[0]
        )


@pytest.mark.slow
def test_sigkill_during_hl7_feed(tmp_path: Path, indexer: SearchIndexer) -> None:
    journal = tmp_path / "journal.db"
    (tmp_path / "ch.yaml").write_text(f"name: kill\njournal: {journal}\n", encoding="utf-8")
    store = tmp_path / "store.db"
    url = f"sqlite:///{store}"
    port = free_port()
    sender = Sender(port)
    rng = random.Random(3)
    zygote = Zygote(tmp_path)  # each round forks ``cmio hl7 listen`` (see test_kill)
    try:
        for round_ in range(LOOPS):
            pid = zygote.listen(tmp_path, port, tmp_path / f"listen{round_}.log")
            stop = threading.Event()
            thread = threading.Thread(target=sender.stream, args=(stop,))
            thread.start()
            acked = len(sender.acked)
            deadline = time.monotonic() + 60
            # (killed before the engine created the store, there is no store to check)
            while len(sender.acked) < acked + 3 or not count(
                store, "SELECT count(*) FROM schema_version"
            ):
                assert time.monotonic() < deadline, "the engine acknowledged nothing"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            status = zygote.wait(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            stop.set()
            thread.join(10)
            # Between kills the store is sound and what the journal says was applied is there.
            report = diagnose(url, indexer, full=True, journal=journal)
            assert report.ok, [f"{f.check} {f.subject}: {f.message}" for f in report.findings]
    finally:
        zygote.close()
    proc, drainer = start(tmp_path, port)  # a clean run drains what the journal holds
    deadline = time.monotonic() + 60
    while waiting(journal):
        assert time.monotonic() < deadline, "messages still waiting in the journal"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    drainer.join(10)

    assert len(sender.acked) >= LOOPS
    with sqlite3.connect(journal) as conn:
        states = dict(
            conn.execute("SELECT control_id, state FROM messages WHERE dup_of IS NULL").fetchall()
        )
    assert {states[c] for c in sender.acked} == {"processed"}  # every ACKed message applied
    report = assert_doctor_ok(url, indexer)
    assert report.checked["index"] == report.checked["current"]
    result = CliRunner().invoke(
        app, ["doctor", "--database", url, "--full", "--journal", str(journal)]
    )
    assert result.exit_code == 0, result.output
    assert "journal" in result.output
