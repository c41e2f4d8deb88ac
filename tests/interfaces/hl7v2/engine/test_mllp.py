"""MLLP framing: the decoder's events, file splitting, the client."""

from __future__ import annotations

from pathlib import Path

from cmio.interfaces.hl7v2.engine.mllp import (
    FrameDecoder,
    MllpClient,
    frame,
    read_message_files,
    split_messages,
)
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import RunningEngine, oru


def kinds(decoder: FrameDecoder, data: bytes) -> list[tuple[str, bytes]]:
    return [(e.kind, e.data) for e in decoder.feed(data)]


def test_frames_split_across_reads_byte_by_byte() -> None:
    stream = frame(b"MSH|one\r") + b"\r\n" + frame(b"MSH|two\r")
    decoder = FrameDecoder()
    events: list[tuple[str, bytes]] = []
    for i in range(len(stream)):
        events += kinds(decoder, stream[i : i + 1])
    assert events == [("frame", b"MSH|one\r"), ("frame", b"MSH|two\r")]
    assert not decoder.partial


def test_end_block_straddling_reads_in_an_oversize_frame() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    big = b"MSH|^~\\&|A|B|C|D|||ORU^R01|BIG|P|2.5.1\r" + b"X" * 500
    assert kinds(decoder, b"\x0b" + big + b"\x1c") == []
    events = list(decoder.feed(b"\r" + frame(b"MSH|next\r")))
    assert [e.kind for e in events] == ["oversize", "frame"]
    assert events[0].size == len(big)
    assert events[0].data.startswith(b"MSH|^~\\&|A|B")  # enough to answer the sender
    assert events[1].data == b"MSH|next\r"


def test_garbage_truncated_and_whitespace() -> None:
    decoder = FrameDecoder()
    events = kinds(decoder, b"\x00\xffjunk" + frame(b"MSH|a\r"))
    assert events == [("garbage", b"\x00\xffjunk"), ("frame", b"MSH|a\r")]
    events = kinds(decoder, b"\x0bMSH|cut" + frame(b"MSH|b\r"))
    assert events == [("truncated", b"MSH|cut"), ("frame", b"MSH|b\r")]
    assert kinds(decoder, b"\r\n \t") == []  # whitespace between frames is tolerated
    assert kinds(decoder, b"\x0bMSH|partial") == []
    assert decoder.partial and decoder.buffered == len(b"MSH|partial")


def test_split_plain_and_framed_files() -> None:
    one, two = oru("1"), oru("2")
    crlf = (one + two).replace(b"\r", b"\r\n")
    assert split_messages(b"\xef\xbb\xbf" + crlf) == [one, two]
    assert split_messages((one + two).replace(b"\r", b"\n")) == [one, two]
    assert split_messages(frame(one) + frame(two)) == [one, two]
    assert [parse(m).control_id for m in split_messages(one + two)] == ["1", "2"]


def test_read_message_files(tmp_path: Path) -> None:
    (tmp_path / "a.hl7").write_bytes(oru("1") + oru("2"))
    (tmp_path / "b.mllp").write_bytes(frame(oru("3")))
    got = list(read_message_files([tmp_path / "a.hl7", tmp_path / "b.mllp"]))
    assert [parse(m).control_id for m in got] == ["1", "2", "3"]


def test_client_gets_one_ack_per_message(running: RunningEngine) -> None:
    with MllpClient("127.0.0.1", running.port, timeout=10) as client:
        acks = [parse(client.send(oru(f"C{i}"))) for i in range(5)]
    assert [a.value("MSA-2") for a in acks] == [f"C{i}" for i in range(5)]
    assert {a.value("MSA-1") for a in acks} == {"AA"}
