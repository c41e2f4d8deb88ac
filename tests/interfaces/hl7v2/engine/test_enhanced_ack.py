"""Enhanced-mode acknowledgment over MLLP: commit ACKs by MSH-15, application ACKs by MSH-16."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmio.cli.main import app
from cmio.interfaces.hl7v2.engine.ack import build_ack, commit_code, read_header, wanted
from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, MllpClient, frame
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.message import Message
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import FakeStore, RunningEngine, channel, echo_mapper
from tests.interfaces.hl7v2.engine.conftest import oru as plain_oru


def oru(control_id: str, accept: str, app: str, **kw: str) -> bytes:
    """An ORU^R01 with MSH-15 and MSH-16 set."""
    version = kw.pop("version", "2.5.1")
    raw = plain_oru(control_id, version=version, **kw)
    return raw.replace(f"|{version}\r".encode(), f"|{version}|||{accept}|{app}\r".encode(), 1)


class ReturnPeer:
    """The original sender's MLLP listener for application ACKs; answers each with CA."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.received: list[Message] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        decoder = FrameDecoder()
        with conn:
            while data := conn.recv(65536):
                for event in decoder.feed(data):
                    message = parse(event.data)
                    with self.cond:
                        self.received.append(message)
                        self.cond.notify_all()
                    conn.sendall(frame(build_ack(read_header(event.data), "CA", "R1")))

    def wait(self, count: int, timeout: float = 10.0) -> list[Message]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def peer() -> Iterator[ReturnPeer]:
    p = ReturnPeer()
    yield p
    p.close()


@pytest.fixture
def enhanced(tmp_path: Path, store: FakeStore, peer: ReturnPeer) -> Iterator[RunningEngine]:
    config = channel(tmp_path, return_destination={"host": "127.0.0.1", "port": peer.port},
                     retry={"max_attempts": 2, "initial_delay": 0.05})  # fmt: skip
    engine = Engine([config], store, mapper=echo_mapper,
                    supported_types=frozenset({"ORU^R01"}))  # fmt: skip
    with RunningEngine(engine) as run:
        yield run


def read_acks(sock: socket.socket, count: int, timeout: float = 10) -> list[Message]:
    decoder = FrameDecoder()
    sock.settimeout(timeout)
    out: list[Message] = []
    while len(out) < count:
        data = sock.recv(65536)
        assert data, "the engine closed the connection"
        out += [parse(e.data) for e in decoder.feed(data) if e.kind == "frame"]
    return out


def test_table_0155_conditions() -> None:
    assert [commit_code(c) for c in ("AA", "AE", "AR")] == ["CA", "CE", "CR"]
    assert wanted("AL", "CE", default="NE") and not wanted("NE", "CA", default="AL")
    assert wanted("ER", "CR", default="AL") and not wanted("ER", "CA", default="AL")
    assert wanted("SU", "AA", default="AL") and not wanted("SU", "AE", default="AL")
    assert wanted("", "AA", default="AL") and not wanted("", "AA", default="NE")


def test_commit_then_application_ack(
    enhanced: RunningEngine, store: FakeStore, peer: ReturnPeer
) -> None:
    with MllpClient("127.0.0.1", enhanced.port, timeout=10) as client:
        commit = parse(client.send(oru("EN1", "AL", "AL")))
        again = parse(client.send(oru("EN1", "AL", "AL")))  # a duplicate: committed already
    assert commit.value("MSA-1") == "CA" and commit.value("MSA-2") == "EN1"
    assert again.value("MSA-1") == "CA"
    (app,) = peer.wait(1)
    assert app.value("MSH-9.2") == "R01" and app.value("MSA-1") == "AA"
    assert app.value("MSA-2") == "EN1"
    assert app.value("MSH-5") == "LAB" and app.value("MSH-3") == "CMIO"  # back to the sender
    assert (app.value("MSH-15"), app.value("MSH-16")) == ("AL", "NE")
    assert enhanced.engine.drain(10)
    assert store.applied == ["EN1"]
    time.sleep(0.2)
    assert len(peer.received) == 1  # the duplicate is not processed, so no second AA


def test_accept_ack_conditions_and_application_errors(
    enhanced: RunningEngine, store: FakeStore, peer: ReturnPeer
) -> None:
    store.fail = lambda bundle: 422 if bundle.get("id") == "BAD" else 200
    with socket.create_connection(("127.0.0.1", enhanced.port), timeout=10) as sock:
        sock.sendall(b"".join(frame(m) for m in (
            oru("NE1", "NE", "ER"),                 # no commit ACK, no application ACK (ok)
            oru("ER1", "ER", "ER", version="2.1"),  # rejected: CR is sent (ER)
            oru("ER2", "ER", "SU"),                 # accepted: no CA (ER); AA later (SU)
            oru("BAD", "SU", "ER"),                 # CA (SU); the store refuses it: AE later
            plain_oru("ORIG1"),                     # original mode in between: AA as before
        )))  # fmt: skip
        answers = read_acks(sock, 3)
    codes = [(a.value("MSA-1"), a.value("MSA-2")) for a in answers]
    assert codes == [("CR", "ER1"), ("CA", "BAD"), ("AA", "ORIG1")]
    assert answers[0].value("ERR-3.1") == "203"
    assert enhanced.engine.drain(10)
    received = peer.wait(2)
    by_id = {m.value("MSA-2"): m for m in received}
    assert sorted(by_id) == ["BAD", "ER2"]
    assert by_id["ER2"].value("MSA-1") == "AA"
    assert by_id["BAD"].value("MSA-1") == "AE"
    assert "422" in by_id["BAD"].value("ERR-8")
    time.sleep(0.2)
    assert len(peer.received) == 2  # nothing for NE1 (ER, success) nor ORIG1 (original mode)
    assert sorted(store.applied) == ["ER2", "NE1", "ORIG1"]


def test_unreachable_return_destination_does_not_block(tmp_path: Path, store: FakeStore) -> None:
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nobody listens there
    config = channel(tmp_path, return_destination={"host": "127.0.0.1", "port": port},
                     retry={"max_attempts": 2, "initial_delay": 0.01})  # fmt: skip
    engine = Engine([config], store, mapper=echo_mapper, supported_types=frozenset({"ORU^R01"}))
    with RunningEngine(engine) as run, MllpClient("127.0.0.1", run.port, timeout=10) as client:
        assert parse(client.send(oru("U1", "AL", "AL"))).value("MSA-1") == "CA"
        assert parse(client.send(oru("U2", "AL", "AL"))).value("MSA-1") == "CA"
        assert engine.drain(10)
        acks = engine.processors["test"].app_acks
        assert acks is not None
        deadline = time.monotonic() + 10
        while acks.failed < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert acks.failed == 2 and acks.sent == 0
    assert store.applied == ["U1", "U2"]


def test_send_command_in_enhanced_mode(
    tmp_path: Path, enhanced: RunningEngine, store: FakeStore, peer: ReturnPeer
) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_bytes(b"".join([
        oru("C1", "NE", "NE"), oru("C2", "ER", "NE", version="2.1"), plain_oru("C3"),
        oru("C4", "AL", "NE"), oru("C5", "ER", "NE"),
    ]))  # fmt: skip
    result = CliRunner().invoke(app, ["hl7", "send", str(feed), "--port", str(enhanced.port)])
    assert result.exit_code == 1, result.output  # C2 was rejected (CR), answered late
    output = " ".join(result.output.split())
    assert "AA 1, CA 1, CR 1" in output and "C2: CR" in output
    assert "sent, MSH-15 ER 2" in output and "sent, MSH-15 NE 1" in output
    assert enhanced.engine.drain(10)
    assert sorted(store.applied) == ["C1", "C3", "C4", "C5"]
