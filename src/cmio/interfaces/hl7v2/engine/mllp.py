"""MLLP framing, a frame decoder with limits, and a blocking MLLP client.

The HL7 v2 Minimal Lower Layer Protocol (MLLP, release 2; HL7 v2.5.1 Implementation
Guide "Transport Specification: MLLP", https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55)
frames each message as ``<VT> message <FS><CR>`` (``0x0B`` ... ``0x1C 0x0D``).

:class:`FrameDecoder` turns a byte stream into frames and reports, without raising,
what a server must answer: bytes outside a frame, a frame larger than the limit
(the rest of it is skipped so the connection stays usable), a new start block
inside an unfinished frame (the partial frame is reported truncated).
:class:`MllpClient` is a real MLLP client: it frames, sends and waits for each ACK.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cmio.interfaces.hl7v2.parser import split_messages as plain_split

__all__ = [
    "END_BLOCK",
    "START_BLOCK",
    "FrameDecoder",
    "FrameEvent",
    "MllpClient",
    "MllpError",
    "frame",
    "read_message_files",
    "split_messages",
]

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\r"
_FS = 0x1C


class MllpError(Exception):
    """A transport-level failure of the MLLP client (closed connection, timeout, bad frame)."""


def frame(message: bytes) -> bytes:
    """Wrap one message in an MLLP block."""
    return START_BLOCK + message + END_BLOCK


class FrameEvent(NamedTuple):
    """One thing the decoder found in the stream.

    Attributes:
        kind: ``frame`` (``data`` is the message), ``garbage`` (bytes outside any frame,
            ``data`` holds at most the first 64 of them), ``oversize`` (a frame above the
            limit; ``data`` is its first bytes, enough to read MSH), ``truncated`` (a frame
            cut by a new start block; ``data`` is what arrived).
        size: the number of bytes concerned.
    """

    kind: str
    data: bytes
    size: int


class FrameDecoder:
    """Incremental MLLP decoder with a per-frame size limit.

    Args:
        max_frame_bytes: frames larger than this are reported as ``oversize`` and
            their bytes discarded up to the end block.
    """

    def __init__(self, max_frame_bytes: int = 1 << 20) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._skipping = 0  # > 0: inside an oversize frame, counting its bytes
        self._head = b""

    @property
    def partial(self) -> bool:
        """Whether a frame has started and not ended (a slow or stalled sender)."""
        return self._in_frame

    @property
    def buffered(self) -> int:
        """Bytes held for the current partial frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FrameEvent]:
        """Add bytes; return every complete event they finish, in stream order.

        The buffer is scanned from an offset and cut once per call (not once per frame).
        """
        buf = self._buffer
        buf += data
        events: list[FrameEvent] = []
        pos = 0
        size = len(buf)
        while pos < size:
            if not self._in_frame:
                start = buf.find(START_BLOCK, pos)
                if start < 0:
                    rest = bytes(buf[pos:])
                    if rest.strip(b"\r\n\t "):  # whitespace between frames is tolerated
                        events.append(FrameEvent("garbage", rest[:64], len(rest)))
                    pos = size
                    break
                if start > pos:
                    junk = bytes(buf[pos:start])
                    if junk.strip(b"\r\n\t "):  # whitespace between frames is tolerated
                        events.append(FrameEvent("garbage", junk[:64], len(junk)))
                pos = start + 1
                self._in_frame = True
                self._skipping = 0
                continue
            if self._skipping:
                end = buf.find(END_BLOCK, pos)
                if end < 0:
                    keep = 1 if buf[-1] == _FS else 0  # an end block may straddle reads
                    self._skipping += size - pos - keep
                    pos = size - keep
                    break
                events.append(FrameEvent("oversize", self._head, self._skipping + end - pos))
                pos = end + 2
                self._in_frame = False
                self._skipping = 0
                continue
            end = buf.find(END_BLOCK, pos)
            restart = buf.find(START_BLOCK, pos, size if end < 0 else end)
            if restart >= 0:
                cut = bytes(buf[pos:restart])
                pos = restart
                self._in_frame = False
                events.append(FrameEvent("truncated", cut, len(cut)))
                continue
            if end < 0:
                if size - pos > self.max_frame_bytes:
                    self._head = bytes(buf[pos : pos + 4096])
                    self._skipping = size - pos - (1 if buf[-1] == _FS else 0)
                    pos += self._skipping
                break
            if end - pos > self.max_frame_bytes:
                events.append(FrameEvent("oversize", bytes(buf[pos : pos + 4096]), end - pos))
            else:
                message = bytes(buf[pos:end])
                events.append(FrameEvent("frame", message, len(message)))
            pos = end + 2
            self._in_frame = False
        del buf[:pos]
        return events


def split_messages(data: bytes) -> list[bytes]:
    """Split a file's bytes into messages: MLLP-framed or plain, one or many.

    Plain files hold messages back to back, each starting with ``MSH`` at the start
    of a line; segment terminators may be CR, LF or CRLF (they are normalized to CR,
    the HL7 segment terminator); batch envelopes (FHS/BHS/BTS/FTS) are dropped. A
    leading byte-order mark is dropped.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if START_BLOCK in data[:64]:
        decoder = FrameDecoder(max_frame_bytes=max(len(data), 1))
        return [e.data for e in decoder.feed(data) if e.kind == "frame"]
    return [bytes(m) for m in plain_split(data)]


def read_message_files(paths: list[Path]) -> Iterator[bytes]:
    """Every message of every file, in order (see :func:`split_messages`)."""
    for path in paths:
        yield from split_messages(path.read_bytes())


class MllpClient:
    """A blocking MLLP client: one connection, each message waits for its ACK.

    Args:
        host: server host.
        port: server port.
        timeout: seconds to wait for connect and for each ACK.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder(max_frame_bytes=16 << 20)
        self._pending: list[bytes] = []

    def connect(self) -> None:
        """Open the connection (done on first send)."""
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, message: bytes) -> bytes:
        """Send one message and return its ACK message (unframed)."""
        self.post(message)
        return self.receive()

    def post(self, message: bytes) -> None:
        """Send one message without waiting (enhanced mode, MSH-15 ``NE``/``ER``/``SU``)."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(frame(message))
        except OSError as exc:
            self.close()
            raise MllpError(f"send to {self.host}:{self.port} failed: {exc}") from exc

    def receive(self, timeout: float | None = None) -> bytes:
        """Wait for the next ACK frame (``timeout``: seconds instead of the client's own).

        Raises:
            TimeoutError: nothing came within ``timeout`` (the connection stays open).
            MllpError: the connection failed or closed.
        """
        if self._pending:
            return self._pending.pop(0)
        sock = self._sock
        if sock is None:
            raise MllpError("not connected")
        while True:
            try:
                if timeout is not None:
                    sock.settimeout(timeout)
                chunk = sock.recv(65536)
            except TimeoutError:
                if timeout is None:
                    self.close()
                    raise MllpError(f"no ACK from {self.host}:{self.port}: timed out") from None
                raise
            except OSError as exc:
                self.close()
                raise MllpError(f"no ACK from {self.host}:{self.port}: {exc}") from exc
            finally:
                if timeout is not None and self._sock is not None:
                    self._sock.settimeout(self.timeout)
            if not chunk:
                self.close()
                raise MllpError(f"{self.host}:{self.port} closed the connection before the ACK")
            for event in self._decoder.feed(chunk):
                if event.kind == "frame":
                    self._pending.append(event.data)
            if self._pending:
                return self._pending.pop(0)

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._decoder = FrameDecoder(max_frame_bytes=16 << 20)
                self._pending.clear()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
