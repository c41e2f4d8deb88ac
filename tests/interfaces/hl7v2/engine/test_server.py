"""The MLLP listener: ACK codes, duplicates and hostile clients (the engine keeps serving)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, MllpClient, frame
from cmio.interfaces.hl7v2.engine.runtime import Engine
from cmio.interfaces.hl7v2.message import Message
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import (
    FakeStore,
    RunningEngine,
    channel,
    echo_mapper,
    oru,
)


def send(port: int, raw: bytes) -> Message:
    with MllpClient("127.0.0.1", port, timeout=10) as client:
        return parse(client.send(raw))


def acks(sock: socket.socket, count: int, timeout: float = 10) -> list[Message]:
    decoder = FrameDecoder(1 << 20)
    sock.settimeout(timeout)
    out: list[Message] = []
    while len(out) < count:
        data = sock.recv(65536)
        assert data, "the engine closed the connection"
        out += [parse(e.data) for e in decoder.feed(data) if e.kind == "frame"]
    return out


def test_duplicate_control_id_is_acked_and_processed_once(
    running: RunningEngine, store: FakeStore
) -> None:
    first = send(running.port, oru("D1"))
    again = send(running.port, oru("D1"))
    assert first.value("MSA-1") == again.value("MSA-1") == "AA"
    assert again.value("MSA-2") == "D1"
    assert running.engine.drain(10)
    assert store.applied == ["D1"]
    states = [r["state"] for r in running.engine.journal.rows()]
    assert states == ["processed", "duplicate"]


def test_refusals_carry_err(running: RunningEngine) -> None:
    bad_segment = oru("E1").replace(b"\rOBR|", b"\rO-R|")
    ack = send(running.port, bad_segment)
    assert ack.value("MSA-1") == "AE" and ack.value("MSA-2") == "E1"
    assert ack.value("ERR-3.1") == "100" and ack.value("ERR-4") == "E"
    assert "segment 3" in ack.value("ERR-8")
    cases = {
        oru("V1", version="2.1"): ("AR", "203", "12"),
        oru("P1", processing="X"): ("AR", "202", "11"),
        oru("T1").replace(b"ORU^R01^ORU_R01", b"ORM^O01"): ("AR", "200", "9"),
        oru("").replace(b"ORU_R01||", b"ORU_R01||"): ("AE", "101", "10"),
    }
    for raw, (code, err, field) in cases.items():
        ack = send(running.port, raw)
        assert (ack.value("MSA-1"), ack.value("ERR-3.1")) == (code, err), raw[:60]
        assert (ack.value("ERR-2.1"), ack.value("ERR-2.3")) == ("MSH", field)
    delims = send(running.port, oru("DL1").replace(b"MSH|^~\\&|", b"MSH|^^\\&|", 1))
    assert (delims.value("MSA-1"), delims.value("ERR-3.1")) == ("AE", "102")
    assert (delims.value("ERR-2.1"), delims.value("ERR-2.3")) == ("MSH", "2")
    binary = send(running.port, b"\x00\xff\x10binary garbage inside a frame")
    assert (binary.value("MSA-1"), binary.value("ERR-3.1")) == ("AE", "100")
    assert "does not start with an MSH segment" in binary.value("ERR-8")
    control = send(running.port, oru("CC1").replace(b"DOE^JANE", b"DOE^\x07JANE"))
    assert control.value("MSA-1") == "AE" and control.value("MSA-2") == "CC1"
    assert "control character" in control.value("ERR-8")
    rows = running.engine.journal.rows()
    assert [r["state"] for r in rows] == ["rejected"] * 8  # journaled, never processed
    assert all(r["error"] for r in rows)


def test_garbage_truncated_and_oversize_frames_then_normal_service(
    running: RunningEngine, store: FakeStore
) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.sendall(b"\x00\x01\xffgarbage" + frame(oru("G1")))
        garbage, ok = acks(sock, 2)
        assert garbage.value("MSA-1") == "AE" and "outside an MLLP frame" in garbage.value("ERR-8")
        assert ok.value("MSA-1") == "AA" and ok.value("MSA-2") == "G1"
        sock.sendall(b"\x0b" + oru("CUT")[:40] + frame(oru("G2")))
        cut, ok = acks(sock, 2)
        assert cut.value("MSA-1") == "AE" and "truncated" in cut.value("ERR-8")
        assert ok.value("MSA-2") == "G2"
        # 10 MB: refused with AR while another connection is served meanwhile.
        big = oru("BIG") + b"NTE|1||" + b"x" * (10 * 1024 * 1024) + b"\r"
        sender = threading.Thread(target=sock.sendall, args=(frame(big) + frame(oru("G3")),))
        sender.start()
        assert send(running.port, oru("OTHER")).value("MSA-1") == "AA"
        sender.join()
        refused, ok = acks(sock, 2)
        assert refused.value("MSA-1") == "AR" and refused.value("MSA-2") == "BIG"
        assert "exceeds" in refused.value("ERR-8")
        assert ok.value("MSA-2") == "G3"
    assert running.engine.drain(10)
    assert sorted(store.applied) == ["G1", "G2", "G3", "OTHER"]


def test_slowloris_and_idle_connections_are_closed(running: RunningEngine) -> None:
    slow = socket.create_connection(("127.0.0.1", running.port))
    idle = socket.create_connection(("127.0.0.1", running.port))
    slow.sendall(b"\x0bMSH|^~\\&|SLOW")  # a frame that never ends (frame_timeout 1 s)
    started = time.monotonic()
    assert send(running.port, oru("MEANWHILE")).value("MSA-1") == "AA"
    slow.settimeout(10)
    assert slow.recv(100) == b""  # closed by the engine
    assert time.monotonic() - started < 5
    idle.settimeout(10)
    assert idle.recv(100) == b""  # idle_timeout 3 s
    slow.close()
    idle.close()
    assert send(running.port, oru("AFTER")).value("MSA-1") == "AA"


def test_pipelined_messages_get_acks_in_order(running: RunningEngine, store: FakeStore) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.sendall(b"".join(frame(oru(f"Q{i}", f"M{i % 3}")) for i in range(300)))
        got = acks(sock, 300)
    assert [a.value("MSA-2") for a in got] == [f"Q{i}" for i in range(300)]
    assert running.engine.drain(20)
    assert len(store.applied) == 300
    journal: Journal = running.engine.journal
    assert journal.syncs < 150  # pipelined messages share fsyncs


def test_frames_arriving_during_a_commit_are_journaled_without_waiting_for_it(
    running: RunningEngine, store: FakeStore
) -> None:
    journal: Journal = running.engine.journal
    release = threading.Event()
    blocked = threading.Event()
    commit = journal._commit

    def slow_commit(batch: list[Any]) -> None:
        if not blocked.is_set():  # hold the first commit until the second group is queued
            blocked.set()
            assert release.wait(10)
        commit(batch)

    journal._commit = slow_commit  # type: ignore[method-assign]
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.sendall(frame(oru("G1", "M1")))
        assert blocked.wait(10)
        sock.sendall(frame(oru("G2", "M2")))
        deadline = time.monotonic() + 10
        while journal._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not journal._queue.empty()  # G2 went to the journal while G1 was committing
        release.set()
        got = acks(sock, 2)
    assert [a.value("MSA-2") for a in got] == ["G1", "G2"]
    assert [a.value("MSA-1") for a in got] == ["AA", "AA"]
    assert running.engine.drain(10)
    assert store.applied == ["G1", "G2"]
    assert [r["control_id"] for r in journal.rows()] == ["G1", "G2"]


def test_connection_limit(tmp_path: Path, store: FakeStore) -> None:
    config = channel(tmp_path, source={"max_connections": 2})
    engine = Engine([config], store, mapper=echo_mapper)
    with RunningEngine(engine) as run:
        first = socket.create_connection(("127.0.0.1", run.port))
        second = socket.create_connection(("127.0.0.1", run.port))
        time.sleep(0.2)
        third = socket.create_connection(("127.0.0.1", run.port))
        third.settimeout(10)
        assert third.recv(100) == b""  # closed on arrival
        third.close()
        first.sendall(frame(oru("LIM1")))
        assert acks(first, 1)[0].value("MSA-1") == "AA"  # the open ones are served
        first.close()
        time.sleep(0.2)
        assert send(run.port, oru("LIM2")).value("MSA-1") == "AA"  # room again
        second.close()
