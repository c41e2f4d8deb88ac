"""kill -9 the engine 20 times while a sender streams: every ACKed message is stored once."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.destinations import marker_id
from cmio.interfaces.hl7v2.engine.mllp import MllpClient, MllpError
from cmio.interfaces.hl7v2.parser import parse
from cmio.store.base import SearchQuery
from cmio.testing.server import free_port
from tests.interfaces.hl7v2.engine.conftest import oru

KILLS = int(os.environ.get("CMIO_TEST_KILLS", "20"))


def start(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], threading.Thread]:
    """Start ``cmio hl7 listen``; wait until it listens; drain its stderr on a thread."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmio", "hl7", "listen", "--channel", str(tmp_path / "ch.yaml"),
         "--port", str(port), "--database", f"sqlite:///{tmp_path / 'store.db'}",
         "--validation", "off"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    while not seen or "listening" not in seen[-1]:
        line = proc.stderr.readline()
        assert line, "".join(seen)  # the engine exited before listening
        seen.append(line)
    stderr = proc.stderr

    def drain() -> None:
        with stderr:
            stderr.read()

    drainer = threading.Thread(target=drain, daemon=True)  # keep the pipe from filling up
    drainer.start()
    return proc, drainer


class Sender:
    """Streams ORU messages; remembers which were ACKed AA; resends the one in flight."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.next = 0
        self.acked: set[str] = set()
        self.sends = 0

    def stream(self, stop: threading.Event) -> None:
        client = MllpClient("127.0.0.1", self.port, timeout=5)
        try:
            while not stop.is_set():
                control = f"K{self.next:05d}"
                self.sends += 1
                ack = parse(client.send(oru(control, f"KP{self.next % 7}", obx=2)))
                assert ack.value("MSA-1") == "AA" and ack.value("MSA-2") == control
                self.acked.add(control)
                self.next += 1
                time.sleep(0.01)
        except (MllpError, OSError):
            return  # the engine died: the message in flight is sent again next round
        finally:
            client.close()


@pytest.mark.slow
def test_kill_9_while_streaming(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    (tmp_path / "ch.yaml").write_text(f"name: kill\njournal: {journal}\n", encoding="utf-8")
    port = free_port()
    sender = Sender(port)
    rng = random.Random(8)
    for _ in range(KILLS):
        proc, drainer = start(tmp_path, port)
        stop = threading.Event()
        thread = threading.Thread(target=sender.stream, args=(stop,))
        thread.start()
        time.sleep(rng.uniform(0.15, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        thread.join(10)
        drainer.join(10)
    # A last, clean run processes what the journal still holds.
    proc, drainer = start(tmp_path, port)
    deadline = time.monotonic() + 120
    while True:
        with sqlite3.connect(journal) as conn:
            waiting = conn.execute(
                "SELECT count(*) FROM messages WHERE state IN ('received', 'retrying')"
            ).fetchone()[0]
        if not waiting:
            break
        assert time.monotonic() < deadline, f"{waiting} messages still waiting"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    drainer.join(10)

    assert len(sender.acked) >= KILLS  # messages were ACKed in (nearly) every round
    with sqlite3.connect(journal) as conn:
        rows = conn.execute(
            "SELECT control_id, state FROM messages WHERE dup_of IS NULL"
        ).fetchall()
    states = dict(rows)
    assert len(states) == len(rows)  # one accepted row per control id
    assert sender.acked <= set(states)  # every ACKed message was journaled
    assert {states[c] for c in sender.acked} == {"processed"}
    env = build_env(
        f"sqlite:///{tmp_path / 'store.db'}", Settings(validation="off", terminology_db=None)
    )
    try:
        reports = env.repository.search(SearchQuery("DiagnosticReport", count=0)).total
        observations = env.repository.search(SearchQuery("Observation", count=0)).total
        assert reports == len(states) and observations == 2 * len(states)
        for control in sender.acked:
            marker = env.repository.read("Provenance", marker_id("kill", "LAB|HOSP", control))
            assert marker.version == 1  # applied exactly once
    finally:
        env.repository.close()


def test_listen_stops_when_the_store_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "ch.yaml").write_text(f"name: nostore\njournal: {tmp_path / 'j.db'}\n",
                                      encoding="utf-8")  # fmt: skip
    result = CliRunner().invoke(
        app,
        ["hl7", "listen", "--channel", str(tmp_path / "ch.yaml"), "--port", "0",
         "--database", "bogus://nowhere"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "The store could not be opened" in result.output and "bogus" in result.output
