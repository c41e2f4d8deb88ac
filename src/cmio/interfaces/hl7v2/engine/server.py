"""The channel runtime: receipt (check, journal, ACK), the MLLP listener and the folder source.

:meth:`Channel.receive` is the one path every message takes: read MSH, parse, check
the channel's acceptance policy, journal durably, answer. The MLLP listener
(asyncio, one protocol object per connection) frames and unframes, answers ACKs in
order per connection, and protects itself: frames above ``max_message_bytes`` get AR
and are skipped, bytes outside frames get AE, a frame cut by a new start block gets
AE, and a connection that stays silent (``idle_timeout``) or leaves a frame
unfinished (``frame_timeout``, slowloris) is closed, while other connections go on.
MLLP: https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 .
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from cmio.interfaces.hl7v2.engine.ack import (
    ERR_DATA_TYPE,
    ERR_INTERNAL,
    ERR_REQUIRED_FIELD,
    ERR_SEGMENT_SEQUENCE,
    ERR_UNSUPPORTED_PROCESSING_ID,
    ERR_UNSUPPORTED_TYPE,
    ERR_UNSUPPORTED_VERSION,
    AckError,
    Header,
    build_ack,
    commit_code,
    read_header,
    wanted,
)
from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig
from cmio.interfaces.hl7v2.engine.journal import Entry, Journal, JournalError
from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, FrameEvent, frame, split_messages
from cmio.interfaces.hl7v2.errors import ParseError
from cmio.interfaces.hl7v2.message import Message
from cmio.interfaces.hl7v2.parser import parse

__all__ = ["Channel", "patient_key", "poll_folder", "serve_mllp"]

_LOG = logging.getLogger("cmio.hl7.server")

_GROUPS_IN_FLIGHT = 4  # journal appends one connection may have waiting for their commit
_Group: TypeAlias = "tuple[list[FrameEvent], asyncio.Task[list[bytes | None]]]"


def patient_key(message: Message) -> str | None:
    """The per-patient ordering key: PID-3 first identifier and its assigning authority.

    For a merge (ADT^A40) the surviving patient's identifier is used.
    """
    pid = message.segment("PID")
    if pid is None:
        return None
    value = pid.get(3, 1, 1)
    if not value:
        value = pid.get(2, 1, 1)  # v2.3 external patient id
    if not value:
        return None
    authority = pid.get(3, 1, 4) or pid.get(3, 1, 4, 2)
    return f"{value}^{authority}"


class Channel:
    """One channel's receipt path: checks, journal, ACK.

    Args:
        config: the channel configuration.
        journal: the durable journal (its writer thread must be running).
        supported_types: message types (``ORU^R01``) the mapping handles; a channel with no
            ``accept.message_types`` accepts these (empty: any).
    """

    def __init__(
        self, config: ChannelConfig, journal: Journal, supported_types: frozenset[str] = frozenset()
    ) -> None:
        self.config = config
        self.journal = journal
        self.types = frozenset(config.accept.message_types) or supported_types
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()) % 100000:05d}"

    def ack_id(self) -> str:
        """A fresh control id for an ACK."""
        return f"A{self._prefix}{next(self._ids)}"

    def check(self, raw: bytes) -> tuple[Entry, Header | None, AckError | None]:
        """Inspect a message: the journal entry to write, its header and any AE/AR reason."""
        name = self.config.name
        header = read_header(raw)
        if header is None:
            err = AckError(ERR_SEGMENT_SEQUENCE, "the message does not start with an MSH segment",
                           segment="MSH", sequence=1)  # fmt: skip
            return Entry(name, "", "", "", "", None, raw, "AE", err.text), None, err
        base = Entry(name, header.sender, header.control_id, header.message_type,
                     header.version, None, raw, "AE")  # fmt: skip
        try:
            message = parse(raw)
        except ParseError as exc:
            err = AckError(ERR_SEGMENT_SEQUENCE if exc.field is None else ERR_DATA_TYPE,
                           str(exc), segment=exc.segment, sequence=_occurrence(raw, exc),
                           field=exc.field, position=exc.position)  # fmt: skip
            base.error = err.text
            return base, header, err
        refusal = self._policy(header)
        if refusal is not None:
            err = refusal
            base.ack_code = "AE" if err.code == ERR_REQUIRED_FIELD else "AR"
            base.error = err.text
            return base, header, err
        base.ack_code = "AA"
        base.patient_key = patient_key(message)
        base.payload = message
        return base, header, None

    def _policy(self, header: Header) -> AckError | None:
        """AE/AR reasons from MSH (read once by :func:`read_header`; the parse checked it)."""
        accept = self.config.accept
        if not header.control_id:
            return AckError(ERR_REQUIRED_FIELD, "MSH-10 (message control id) is empty",
                            segment="MSH", sequence=1, field=10)  # fmt: skip
        code, _, event = header.message_type.partition("^")
        if not code:
            return AckError(ERR_REQUIRED_FIELD, "MSH-9 (message type) is empty",
                            segment="MSH", sequence=1, field=9)  # fmt: skip
        version = header.version
        if version not in accept.versions:
            return AckError(ERR_UNSUPPORTED_VERSION,
                            f"version {version!r} is not accepted by channel {self.config.name}",
                            segment="MSH", sequence=1, field=12)  # fmt: skip
        if self.types and f"{code}^{event}" not in self.types:
            return AckError(
                ERR_UNSUPPORTED_TYPE,
                f"message type {code}^{event} is not accepted by channel {self.config.name}",
                segment="MSH",
                sequence=1,
                field=9,
            )
        processing = header.processing_id
        if processing not in accept.processing_ids:
            return AckError(
                ERR_UNSUPPORTED_PROCESSING_ID,
                f"processing id {processing!r} is not accepted by channel {self.config.name}",
                segment="MSH",
                sequence=1,
                field=11,
            )
        return None

    def answer(self, header: Header | None, code: str, err: AckError | None) -> bytes | None:
        """The receipt ACK of a message, or None when the sender asked for none.

        Original mode: ``code`` (AA, AE, AR). Enhanced mode (MSH-15 or MSH-16 valued): the
        commit code (CA, CE, CR), sent only when MSH-15 wants it (HL7 v2.5.1 section 2.9.3).
        """
        if header is not None and header.enhanced:
            code = commit_code(code)
            if not wanted(header.accept_ack, code, default="AL"):
                return None
        return build_ack(header, code, self.ack_id(), error=err)

    async def receive(self, raw: bytes) -> bytes | None:
        """Check, journal durably, and return the ACK to send (None: none wanted)."""
        return (await self.receive_many([raw]))[0]

    async def receive_many(self, raws: list[bytes]) -> list[bytes | None]:
        """:meth:`receive` for messages that arrived together: one journal commit for all."""
        now = time.time()  # received: before the checks, whose time counts in the latency
        checked = [self.check(raw) for raw in raws]
        for entry, _, _ in checked:
            entry.received_at = now
        try:
            receipts = await self.journal.append_async([entry for entry, _, _ in checked])
        except JournalError as exc:
            _LOG.error("journal failure: %s", exc)
            err = AckError(ERR_INTERNAL, "the message could not be journaled; send it again")
            return [self.answer(header, "AE", err) for _, header, _ in checked]
        return [
            self.answer(header, receipt.ack_code, err)
            for (_, header, err), receipt in zip(checked, receipts, strict=True)
        ]

    def receive_sync(self, raw: bytes) -> bytes | None:
        """:meth:`receive` for callers outside an event loop (folder source, tests)."""
        entry, header, err = self.check(raw)
        entry.received_at = time.time()
        receipt = self.journal.append_sync([entry])[0]
        return self.answer(header, receipt.ack_code, err)

    def refuse(self, event: FrameEvent) -> bytes | None:
        """The answer to a frame that never reaches the journal (oversize, truncated, garbage)."""
        header = read_header(event.data)
        if event.kind == "oversize":
            limit = self.config.source.max_message_bytes
            err = AckError(ERR_INTERNAL, f"message of {event.size:,} bytes exceeds this channel's"
                           f" limit of {limit:,} bytes; it was discarded")  # fmt: skip
            return self.answer(header, "AR", err)
        if event.kind == "truncated":
            err = AckError(
                ERR_SEGMENT_SEQUENCE,
                f"truncated frame of {event.size:,} bytes: a new"
                " start block (0x0B) came before the end block (0x1C 0x0D)",
            )
            return self.answer(header, "AE", err)
        err = AckError(
            ERR_SEGMENT_SEQUENCE,
            f"{event.size:,} bytes outside an MLLP frame"
            " (expected 0x0B message 0x1C 0x0D); they were discarded",
        )
        return build_ack(None, "AE", self.ack_id(), error=err)


def _occurrence(raw: bytes, exc: ParseError) -> int | None:
    """Which occurrence of its segment id the failing segment is (ERR-2.2)."""
    if exc.segment is None or exc.segment_index is None:
        return None
    lines = [s for s in raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r") if s.strip()]
    name = exc.segment.encode()
    return sum(1 for line in lines[: exc.segment_index] if line[:3] == name) or 1


class _Connection(asyncio.Protocol):
    """One MLLP connection: frames in, ACKs out in the same order."""

    def __init__(self, channel: Channel, connections: set[_Connection]) -> None:
        self.channel = channel
        self.connections = connections
        self.decoder = FrameDecoder(channel.config.source.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[FrameEvent | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.last_data = time.monotonic()
        self.frame_started: float | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        limit = self.channel.config.source.max_connections
        if len(self.connections) >= limit:
            _LOG.warning("refusing an MLLP connection: %d already open", limit)
            self.queue.put_nowait(None)
            transport.close()
            return
        self.connections.add(self)
        self.task = asyncio.get_running_loop().create_task(self._answer())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_data = now
        for event in self.decoder.feed(data):
            self.queue.put_nowait(event)
        if self.decoder.partial:
            if self.frame_started is None:
                self.frame_started = now
        else:
            self.frame_started = None
        if self.queue.qsize() > 256 and self.transport is not None and not self.paused:
            self.transport.pause_reading()  # a pipelining sender waits for its ACKs
            self.paused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.queue.put_nowait(None)

    def close(self, reason: str) -> None:
        _LOG.info("closing MLLP connection: %s", reason)
        if self.transport is not None:
            self.transport.abort()

    async def _answer(self) -> None:
        """Journal frames as they arrive, without waiting for the commit of those before.

        Frames that arrive while a group waits for its commit are checked and queued for
        the journal at once, so they share the next commit with other connections' frames
        instead of waiting a commit of their own; :meth:`_reply` sends the ACKs in arrival
        order. At most ``_GROUPS_IN_FLIGHT`` groups wait per connection (then reading
        pauses as before).
        """
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[_Group | None] = asyncio.Queue(_GROUPS_IN_FLIGHT)
        writer = loop.create_task(self._reply(replies))
        try:
            while True:
                events = [await self.queue.get()]
                while not self.queue.empty() and len(events) < 128:  # pipelined: one commit
                    events.append(self.queue.get_nowait())
                closed = events[-1] is None
                todo = [e for e in events if e is not None]
                if todo:  # the task queues its journal append before any later group's
                    await replies.put((todo, loop.create_task(self._acks(todo))))
                if self.paused and self.queue.qsize() < 64 and self.transport is not None:
                    self.transport.resume_reading()
                    self.paused = False
                if closed:
                    break
            await replies.put(None)  # the writer sends what is in flight, then ends
            await writer
        finally:
            if not writer.done():  # cancelled: journaled groups stay journaled, unanswered
                writer.cancel()

    async def _reply(self, replies: asyncio.Queue[_Group | None]) -> None:
        """Send each group's ACKs, group after group in arrival order."""
        while True:
            group = await replies.get()
            if group is None:
                return
            todo, task = group
            try:
                acks = await task
            except Exception:  # a bug must cost NACKs, never the connection or the engine
                _LOG.exception("receiving %d messages failed", len(todo))
                err = AckError(ERR_INTERNAL, "internal error: the message was not accepted")
                acks = [self.channel.answer(read_header(e.data), "AE", err) for e in todo]
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(b"".join(frame(ack) for ack in acks if ack is not None))

    async def _acks(self, events: list[FrameEvent]) -> list[bytes | None]:
        """ACKs in arrival order; the frames among them are journaled in one commit."""
        frames = [e.data for e in events if e.kind == "frame"]
        answers = iter(await self.channel.receive_many(frames) if frames else [])
        return [next(answers) if e.kind == "frame" else self.channel.refuse(e) for e in events]


async def serve_mllp(
    channel: Channel,
    host: str,
    port: int,
    *,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Listen for MLLP connections until ``stop`` is set (or the task is cancelled).

    Args:
        channel: the channel that receives the messages.
        host: address to bind.
        port: port to bind (0: any free port; ``ready`` gets the one chosen).
        ready: called with the bound port once listening.
        stop: set it to stop listening and close connections.
    """
    loop = asyncio.get_running_loop()
    connections: set[_Connection] = set()
    server = await loop.create_server(
        lambda: _Connection(channel, connections), host, port, reuse_address=True, backlog=512
    )
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready(int(bound))
    source = channel.config.source
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(0.5, source.frame_timeout / 2))
            now = time.monotonic()
            for conn in list(connections):
                if (
                    conn.frame_started is not None
                    and now - conn.frame_started > source.frame_timeout
                ):
                    conn.close(f"frame unfinished after {source.frame_timeout:g} s")
                elif now - conn.last_data > source.idle_timeout and conn.queue.empty():
                    conn.close(f"idle for {source.idle_timeout:g} s")
    finally:
        server.close()
        for conn in list(connections):
            conn.close("shutting down")
        await server.wait_closed()


async def poll_folder(channel: Channel, stop: asyncio.Event) -> None:
    """Folder source: journal every message of each file, then move the file to ``done``.

    A file is handled whole before it moves; after a crash in between its messages
    come again and are recognised as duplicates (same MSH-10), so nothing doubles.
    """
    source = channel.config.source
    assert source.path is not None
    inbox = Path(source.path)
    done = Path(source.done) if source.done else inbox / "done"
    while not stop.is_set():
        for path in sorted(inbox.glob(source.pattern)) if inbox.is_dir() else []:
            if not path.is_file():
                continue
            for raw in split_messages(path.read_bytes()):
                await channel.receive(raw)
            done.mkdir(parents=True, exist_ok=True)
            path.replace(done / path.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=source.poll_seconds)
