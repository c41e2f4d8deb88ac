"""Enhanced-mode application acknowledgments, sent after processing to the return destination.

HL7 v2.5.1 section 2.9.3 (https://v2plus.hl7.org/2021Jan/index.html): a message whose
MSH-16 (application acknowledgment type) asks for it gets, once processed, an
application ACK (``AA`` processed or filtered, ``AE`` parked in the error queue with the
reason in ERR) sent as a message of its own to the channel's ``return_destination``.
That ACK asks the original sender for a commit ACK (its MSH-15 ``AL``, MSH-16 ``NE``);
``CA``/``AA`` completes it, anything else or no answer is retried with the channel's
retry policy, then logged and dropped. Outcomes are handed over once they are durable
in the journal, so an application ACK never announces what a crash could undo; an
ACK waiting to be sent when the engine stops is lost (the sender may query or resend:
the resend is a duplicate and answered as such).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cmio.interfaces.hl7v2.engine.ack import ERR_INTERNAL, AckError, build_ack, read_header, wanted
from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig, Destination
from cmio.interfaces.hl7v2.engine.destinations import DownstreamError, MllpDestination

__all__ = ["AppAckSender", "Outcome"]

_LOG = logging.getLogger("cmio.hl7.appack")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A message's final processing outcome: its bytes, ``AA`` or ``AE``, and the reason."""

    raw: bytes
    code: str
    error: str | None = None


class AppAckSender:
    """Builds and sends application ACKs on a thread of its own (a slow peer never stalls).

    Args:
        channel: the channel (its ``return_destination`` and ``retry`` policy).
        destination: where ACKs go (default: the channel's ``return_destination``).
    """

    def __init__(self, channel: ChannelConfig, destination: Destination | None = None) -> None:
        target = destination or channel.return_destination
        if target is None or target.host is None or target.port is None:
            raise ValueError(f"channel {channel.name}: no return_destination for application ACKs")
        self.channel = channel
        self.peer = MllpDestination(target.host, target.port)
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._ids = itertools.count(1)
        self._prefix = f"B{int(time.time()) % 100000:05d}"
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.sent = 0
        self.failed = 0

    def offer(self, outcomes: Iterable[Outcome]) -> int:
        """Queue the application ACKs these outcomes call for (by MSH-16); returns how many."""
        count = 0
        for outcome in outcomes:
            header = read_header(outcome.raw)
            if header is None or not header.enhanced:
                continue
            if not wanted(header.application_ack, outcome.code, default="NE"):
                continue
            err = None
            if outcome.code != "AA":
                err = AckError(ERR_INTERNAL, outcome.error or "the message was not processed")
            ack = build_ack(header, outcome.code, f"{self._prefix}{next(self._ids)}", error=err,
                            request="AL|NE")  # fmt: skip
            self._queue.put(ack)
            count += 1
        if count and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"cmio-hl7-appack-{self.channel.name}", daemon=True
            )
            self._thread.start()
        return count

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        self._closing.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        self.peer.close()

    def _run(self) -> None:
        while True:
            ack = self._queue.get()
            if ack is None:
                return
            self._send(ack)

    def _send(self, ack: bytes) -> None:
        policy = self.channel.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                self.peer.send(ack)
            except DownstreamError as exc:
                last_try = attempt == policy.max_attempts or not exc.retryable
                if last_try or self._closing.wait(policy.delay(attempt)):
                    self.failed += 1
                    _LOG.warning("application ACK not delivered after %d attempts: %s",
                                 attempt, exc)  # fmt: skip
                    return
                continue
            self.sent += 1
            return
