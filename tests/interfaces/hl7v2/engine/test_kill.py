"""kill -9 the engine 20 times while a sender streams, then once more while its preparation
worker takes batches: every ACKed message is stored once; the worker ends with its engine."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
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
from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, MllpClient, MllpError, frame
from cmio.interfaces.hl7v2.parser import parse
from cmio.store.base import SearchQuery
from cmio.testing.server import free_port
from tests.interfaces.hl7v2.engine.conftest import oru

KILLS = int(os.environ.get("CMIO_TEST_KILLS", "20"))


def listen_args(tmp_path: Path, port: int) -> list[str]:
    """``cmio hl7 listen`` arguments for the test's channel and store."""
    return ["hl7", "listen", "--channel", str(tmp_path / "ch.yaml"), "--port", str(port),
            "--database", f"sqlite:///{tmp_path / 'store.db'}", "--validation", "off"]  # fmt: skip


def start(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], threading.Thread]:
    """Start ``cmio hl7 listen``; wait until it listens; drain its stderr on a thread."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cmio", *listen_args(tmp_path, port)],
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


# A single-threaded process that has imported the CLI and the engine's modules forks one
# child per kill round; the child runs ``cmio hl7 listen`` (the click command of
# ``cmio.cli.main.app``, as ``python -m cmio`` runs it) with its stderr in a log file. Each round then costs a fork
# instead of an interpreter start and ~2 s of imports on a loaded machine.
_ZYGOTE = """
import json, os, sys, threading
import typer.main
from cmio.cli.main import app
import cmio.api.app, cmio.api.audit, cmio.api.audit_facts, cmio.api.hl7, cmio.rules.batch
import cmio.interfaces.hl7v2.engine.runtime, cmio.interfaces.hl7v2.mapping, cmio.store.sqlite
import pydantic, rich._emoji_codes
command = typer.main.get_command(app)  # what app(...) builds on each call
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request[0] == "wait":
        print(os.waitpid(request[1], 0)[1], flush=True)
        continue
    assert threading.active_count() == 1  # fork only a single-threaded process
    log, args = request[1], request[2:]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            command(args=args, prog_name="cmio")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    print(pid, flush=True)
"""


class Zygote:
    """Forks ``cmio hl7 listen`` processes from a process that has its imports done."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=cwd,
        )  # fmt: skip
        assert self._read() == "ready"
        self.children: set[int] = set()

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the zygote process exited"
        return line.strip()

    def _ask(self, command: list[object]) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def listen(self, tmp_path: Path, port: int, log: Path, *extra: str) -> int:
        """Fork a listener; return its pid once its log says it listens."""
        pid = int(self._ask(["listen", str(log), *listen_args(tmp_path, port), *extra]))
        self.children.add(pid)
        deadline = time.monotonic() + 60
        while "listening" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            time.sleep(0.01)
        return pid

    def wait(self, pid: int) -> int:
        """Reap a child: its wait status."""
        status = int(self._ask(["wait", pid]))
        self.children.discard(pid)
        return status

    def close(self) -> None:
        """Kill a listener a failed round left running, then end the forking process."""
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()


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
    zygote = Zygote(tmp_path)
    try:
        for round_ in range(KILLS):
            pid = zygote.listen(tmp_path, port, tmp_path / f"listen{round_}.log")
            stop = threading.Event()
            thread = threading.Thread(target=sender.stream, args=(stop,))
            thread.start()
            time.sleep(rng.uniform(0.15, 0.5))
            os.kill(pid, signal.SIGKILL)
            status = zygote.wait(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            stop.set()
            thread.join(10)
        bursts = kill_while_the_worker_prepares(tmp_path, port, zygote, rng)
    finally:
        zygote.close()
    assert len(sender.acked) >= KILLS  # messages were ACKed in (nearly) every round
    assert_applied_once(tmp_path, port, sender.acked | bursts, obx=2)


class BurstSender:
    """Sends ORU messages 16 at a time (one burst per 0.1 s) over one connection; remembers
    which were ACKed AA."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.next = 0
        self.acked: set[str] = set()

    def stream(self, stop: threading.Event) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                while not stop.is_set():
                    controls = [f"W{self.next + i:05d}" for i in range(16)]
                    self.next += 16
                    sock.sendall(b"".join(frame(oru(c, f"WP{int(c[1:]) % 13}", obx=2))
                                          for c in controls))  # fmt: skip
                    decoder, acks = FrameDecoder(1 << 20), list[bytes]()
                    while len(acks) < len(controls):
                        data = sock.recv(65536)
                        if not data:
                            return
                        acks += [e.data for e in decoder.feed(data) if e.kind == "frame"]
                    for ack in acks:
                        parsed = parse(ack)
                        assert parsed.value("MSA-1") == "AA"
                        self.acked.add(parsed.value("MSA-2"))
                    stop.wait(0.1)
        except OSError:
            return  # the engine died: the messages not ACKed are sent again... or not at all


def kill_while_the_worker_prepares(
    tmp_path: Path, port: int, zygote: Zygote, rng: random.Random
) -> set[str]:
    """One more kill, with the preparation worker taking batches; the messages ACKed."""
    sender = BurstSender(port)
    log = tmp_path / "worker.log"
    pid = zygote.listen(tmp_path, port, log, "--worker-after", "0")
    deadline = time.monotonic() + 120
    while "preparation worker ready" not in log.read_text():
        assert "preparation worker failed" not in log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    worker = int(log.read_text().split("preparation worker ready (pid ")[1].split(")")[0])
    stop = threading.Event()  # bursts: a backlog, so batches go to the worker
    thread = threading.Thread(target=sender.stream, args=(stop,))
    thread.start()
    while len(sender.acked) < 32:  # (the first bursts may wait on a busy machine)
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    time.sleep(rng.uniform(0.1, 0.3))
    os.kill(pid, signal.SIGKILL)
    status = zygote.wait(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    stop.set()
    thread.join(10)
    deadline = time.monotonic() + 30
    while not gone(worker):  # the worker ends with its engine
        assert time.monotonic() < deadline, f"worker {worker} outlived its engine"
        time.sleep(0.05)
    return sender.acked


def gone(pid: int) -> bool:
    """Whether a process has exited (a zombie waits for whoever adopted it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def assert_applied_once(tmp_path: Path, port: int, acked: set[str], obx: int) -> None:
    """After a last, clean run: every ACKed message processed, its resources stored once."""
    journal = tmp_path / "journal.db"
    # A last, clean run (``python -m cmio``) processes what the journal still holds.
    proc, drainer = start(tmp_path, port)
    try:
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
    finally:  # (a failed wait must not leave the listener running)
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    drainer.join(10)
    with sqlite3.connect(journal) as conn:
        rows = conn.execute(
            "SELECT control_id, state FROM messages WHERE dup_of IS NULL"
        ).fetchall()
    states = dict(rows)
    assert len(states) == len(rows)  # one accepted row per control id
    assert acked <= set(states)  # every ACKed message was journaled
    assert {states[c] for c in acked} == {"processed"}
    env = build_env(
        f"sqlite:///{tmp_path / 'store.db'}", Settings(validation="off", terminology_db=None)
    )
    try:
        reports = env.repository.search(SearchQuery("DiagnosticReport", count=0)).total
        observations = env.repository.search(SearchQuery("Observation", count=0)).total
        assert reports == len(states) and observations == obx * len(states)
        for control in acked:
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
