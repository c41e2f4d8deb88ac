"""Processing journaled messages: parse, filter, map, deliver; in order per patient.

One processor per channel takes ``received`` messages from the journal (fed by the
journal's commits and, at start, by :meth:`Journal.pending`) and handles them in
batches: each batch holds at most one message per patient, so messages about one
patient are applied in arrival order while different patients share a batch and one
store commit (https://www.sqlite.org/lang_savepoint.html: each Bundle is its own
savepoint). A downstream failure that may pass (store 5xx, unreachable peer) is
retried with the channel's backoff; the patient's later messages wait behind it.
A failure that cannot pass (parse error, mapping error, store 4xx, retries used up)
parks the message in the error queue (state ``error``) with its reason; ``cmio hl7
replay`` puts it back. Exactly once: a message that may already have reached the
store (recovered after a restart, or retried) is checked for its marker Provenance
first (:func:`~cmio.interfaces.hl7v2.engine.destinations.marker_id`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cmio.interfaces.hl7v2.engine.appack import AppAckSender, Outcome
from cmio.interfaces.hl7v2.engine.channels import ChannelConfig
from cmio.interfaces.hl7v2.engine.destinations import (
    DownstreamError,
    FolderDestination,
    MllpDestination,
    SinkItem,
    TransactionSink,
    marker_id,
    marker_resource,
    with_marker,
)
from cmio.interfaces.hl7v2.engine.journal import Journal, JournalRow, StateUpdate
from cmio.interfaces.hl7v2.engine.steps import (
    MappedMessage,
    Mapper,
    Prepared,
    Work,
    describe_unmapped,
    passes_filters,
)
from cmio.interfaces.hl7v2.errors import ParseError
from cmio.interfaces.hl7v2.message import Message
from cmio.interfaces.hl7v2.parser import parse

__all__ = ["Processor"]

_LOG = logging.getLogger("cmio.hl7.processor")


class Processor:
    """Processes one channel's journaled messages on a background thread.

    Args:
        channel: the channel configuration (filters, mapping options, destinations, retry).
        journal: where outcomes are recorded.
        sink: the FHIR store (required when a destination is ``store``).
        mapper: the v2-to-FHIR mapping (default: :mod:`cmio.interfaces.hl7v2.mapping`).
        max_batch: most messages per batch (one store commit).
        translate: ConceptMap translation of local codes for the default mapping
            (``translate(system, code) -> [(system, code, display)]``).
        patient_links: the stored patient's ``Patient.link`` entries by identifier, so an
            ADT that replaces a merged patient keeps its links (default mapping only).
        max_queued: most messages held in memory; the rest wait in the journal.
    """

    def __init__(
        self,
        channel: ChannelConfig,
        journal: Journal,
        sink: TransactionSink | None,
        *,
        mapper: Mapper | None = None,
        max_batch: int = 64,
        translate: Callable[[str, str], Sequence[tuple[str, str, str]]] | None = None,
        max_queued: int = 10_000,
        patient_links: Callable[[str, str], Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.channel = channel
        self.journal = journal
        self.sink = sink
        if mapper is None:
            from cmio.interfaces.hl7v2.mapping import MappingOptions, map_message

            try:
                options = MappingOptions.from_dict(channel.mapping)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"channel {channel.name}: mapping: {exc}") from exc
            if translate is not None:  # local codes through the terminology's ConceptMaps
                options = dataclasses.replace(options, translate=translate)
            if patient_links is not None:  # merges survive later ADT updates
                options = dataclasses.replace(options, patient_links=patient_links)

            def mapper(message: Message, _options: dict[str, Any]) -> MappedMessage:
                return map_message(message, options)

        self.mapper: Mapper = mapper
        self.max_batch = max_batch
        self._folders = [FolderDestination(d.path) for d in channel.destinations
                         if d.type == "folder" and d.path]  # fmt: skip
        self._peers = [MllpDestination(d.host, d.port) for d in channel.destinations
                       if d.type == "mllp" and d.host and d.port]  # fmt: skip
        self._to_store = any(d.type == "store" for d in channel.destinations)
        if self._to_store and sink is None:
            raise ValueError(f"channel {channel.name}: a store destination needs a store")
        self._queue: deque[Work] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._unrecorded = 0  # outcomes sent to the journal and not yet committed
        self.max_queued = max_queued
        self._spilled = False  # messages beyond max_queued wait in the journal only
        self._last_id = 0  # the newest journal id queued
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.app_acks = AppAckSender(channel) if channel.return_destination else None

    # -- feeding ---------------------------------------------------------------------------

    def submit(self, rows: Sequence[JournalRow]) -> None:
        """Queue journaled rows of this channel (called from the journal's commit).

        Beyond ``max_queued`` waiting messages the rest stay in the journal only (memory
        stays bounded however far the store falls behind) and are read back in order.
        """
        mine = [r for r in rows if r.channel == self.channel.name]
        if not mine:
            return
        with self._cond:
            for r in mine:
                if r.id <= self._last_id and not r.recovered:
                    continue  # already read back from the journal
                if self._spilled or len(self._queue) >= self.max_queued:
                    self._spilled = True
                    continue
                self._queue.append(Work(r, r.patient_key or f"#{r.id}"))
                self._last_id = max(self._last_id, r.id)
            self._cond.notify()

    def recover(self) -> int:
        """Queue what the journal still holds for this channel (after a restart)."""
        rows = self.journal.pending(self.channel.name, limit=self.max_queued)
        self.submit(rows)
        if len(rows) == self.max_queued:
            with self._cond:
                self._spilled = True
        return len(rows)

    def _refill(self) -> None:
        """Read back spilled messages once the queue is half empty (holding ``_cond``)."""
        if not self._spilled or len(self._queue) > self.max_queued // 2:
            return
        room = self.max_queued - len(self._queue)
        rows = self.journal.pending(self.channel.name, after_id=self._last_id, limit=room)
        for r in rows:
            self._queue.append(Work(r, r.patient_key or f"#{r.id}"))
            self._last_id = r.id
        self._spilled = len(rows) == room

    def start(self) -> None:
        """Start the processing thread."""
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(
                target=self._run, name=f"cmio-hl7-{self.channel.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current batch; queued messages stay journaled for the next start."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for peer in self._peers:
            peer.close()
        if self.app_acks is not None:
            self.app_acks.close()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or running (retries included); True when idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy or self._unrecorded or self._spilled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    @property
    def depth(self) -> int:
        """Messages waiting (including those waiting for a retry)."""
        return len(self._queue)

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._refill()
                batch = self._take()
                while not batch and not self._stop:
                    self._cond.wait(self._next_wait())
                    self._refill()
                    batch = self._take()
                if self._stop:
                    for work in reversed(batch):
                        self._queue.appendleft(work)
                    self._cond.notify_all()
                    return
                self._busy = True
            try:
                self.process(batch)
            except Exception:  # never lose the thread: requeue the batch for a retry
                _LOG.exception("processing a batch of %d messages failed", len(batch))
                self._requeue([(w, "internal error while processing") for w in batch])
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [w.not_before - now for w in self._queue if w.not_before > now]
        return max(0.001, min(waits)) if waits else 1.0

    def _take(self) -> list[Work]:
        """Up to ``max_batch`` ready messages, at most one per patient, the oldest of each."""
        now = time.monotonic()
        seen: set[str] = set()
        batch: list[Work] = []
        keep: deque[Work] = deque()
        scanned = 0
        while self._queue and len(batch) < self.max_batch and scanned < 8 * self.max_batch:
            work = self._queue.popleft()
            scanned += 1
            if work.key in seen or work.not_before > now:
                seen.add(work.key)
                keep.append(work)
                continue
            seen.add(work.key)
            batch.append(work)
        self._queue.extendleft(reversed(keep))  # O(kept), not O(queue)
        return batch

    def _requeue(self, failures: list[tuple[Work, str]]) -> None:
        """Schedule retries (or park when attempts are used up), oldest first."""
        policy = self.channel.retry
        updates: list[StateUpdate] = []
        back: list[Work] = []
        for work, reason in failures:
            attempts = work.row.attempts + 1
            work.row.attempts = attempts
            if attempts >= policy.max_attempts:
                updates.append(
                    StateUpdate(
                        work.row.id,
                        "error",
                        attempts,
                        error=f"gave up after {attempts} attempts: {reason}",
                    )
                )
                continue
            delay = policy.delay(attempts)
            work.not_before = time.monotonic() + delay
            updates.append(
                StateUpdate(
                    work.row.id,
                    "retrying",
                    attempts,
                    error=reason,
                    next_attempt_at=time.time() + delay,
                )
            )
            back.append(work)
        with self._cond:
            for work in sorted(back, key=lambda w: w.row.id, reverse=True):
                self._queue.appendleft(work)
            self._cond.notify_all()
        if updates:
            self._record(updates, {w.row.id: w.row for w, _ in failures})

    def _record(self, updates: list[StateUpdate], rows: Mapping[int, JournalRow]) -> None:
        """Send outcomes to the journal; :meth:`drain` waits until they are committed.

        Once durable, final outcomes go to the enhanced-mode application ACKs.
        """
        with self._cond:
            self._unrecorded += 1
        acks = self.app_acks

        def done() -> None:
            if acks is not None:
                acks.offer(
                    Outcome(rows[u.id].raw, "AE" if u.state == "error" else "AA", u.error)
                    for u in updates
                    if u.state in ("processed", "filtered", "error") and u.id in rows
                )
            with self._cond:
                self._unrecorded -= 1
                self._cond.notify_all()

        self.journal.update(updates, done)

    # -- one batch -------------------------------------------------------------------------

    def process(self, batch: list[Work]) -> None:
        """Handle one batch: parse, filter, map, deliver, record."""
        updates: list[StateUpdate] = []
        ready: list[Prepared] = []
        for work in batch:
            prepared, update = self._prepare(work)
            if update is not None:
                updates.append(update)
            elif prepared is not None:
                ready.append(prepared)
        if ready:
            self._deliver(ready)
        finished = time.time()  # the store committed: what it wrote is queryable from now
        retries: list[tuple[Work, str]] = []
        for p in ready:
            row = p.work.row
            if p.retry:
                retries.append((p.work, p.error or "downstream failure"))
            elif p.error is not None:
                updates.append(
                    StateUpdate(row.id, "error", row.attempts + 1, error=p.error, at=finished)
                )
            else:
                result = {"resources": list(p.locations), "unmapped": p.unmapped}
                updates.append(
                    StateUpdate(row.id, "processed", row.attempts + 1,
                                result=orjson.dumps(result).decode(), at=finished)
                )  # fmt: skip
                self.processed += 1
        if updates:
            self._record(updates, {w.row.id: w.row for w in batch})
        if retries:
            self._requeue(retries)

    def _prepare(self, work: Work) -> tuple[Prepared | None, StateUpdate | None]:
        row = work.row
        message = row.payload
        if not isinstance(message, Message):
            try:
                message = parse(row.raw)
            except ParseError as exc:
                return None, StateUpdate(row.id, "error", row.attempts + 1, error=f"parse: {exc}")
        failed = passes_filters(message, self.channel.filters)
        if failed is not None:
            return None, StateUpdate(
                row.id,
                "filtered",
                row.attempts,
                result=orjson.dumps({"filter": failed.path}).decode(),
            )
        try:
            mapped = self.mapper(message, self.channel.mapping)
        except Exception as exc:  # the mapping refuses this message: park it with the reason
            _LOG.debug("mapping failed for journal row %d", row.id, exc_info=True)
            return None, StateUpdate(
                row.id, "error", row.attempts + 1, error=f"mapping: {type(exc).__name__}: {exc}"
            )
        recorded = datetime.fromtimestamp(row.received_at, UTC).isoformat(timespec="milliseconds")
        marker = marker_resource(
            mapped.bundle, marker_id(row.channel, row.sender, row.control_id),
            channel=row.channel, sender=row.sender, control_id=row.control_id, recorded=recorded,
        )  # fmt: skip
        merge = getattr(mapped, "merge", None)
        if merge is None:  # the marker commits atomically with the message's resources
            item = SinkItem(with_marker(mapped.bundle, marker))
        else:  # a merge comes after the Bundle; the marker last, once both are done
            item = SinkItem(mapped.bundle, merge, marker)
        item = dataclasses.replace(  # who sent it: its audit records name the sender
            item, channel=row.channel, sender=row.sender, control_id=row.control_id
        )
        unmapped = [describe_unmapped(u) for u in mapped.unmapped]
        return Prepared(work, message, item, unmapped), None

    def _deliver(self, ready: list[Prepared]) -> None:
        if self._to_store:
            self._to_sink(ready)
        for p in ready:
            if p.error is not None:
                continue
            try:
                name = f"{self.channel.name}-{p.work.row.id}"
                for folder in self._folders:
                    folder.write(name, p.item.bundle)
                for peer in self._peers:
                    peer.send(p.work.row.raw)
            except DownstreamError as exc:
                p.error, p.retry = str(exc), exc.retryable

    def _to_sink(self, ready: list[Prepared]) -> None:
        assert self.sink is not None
        todo: list[Prepared] = []
        for p in ready:
            row = p.work.row
            marker = marker_id(row.channel, row.sender, row.control_id)
            if (row.recovered or row.attempts) and self.sink.exists("Provenance", marker):
                # applied before a crash or a lost reply: the marker (which commits with
                # the message's resources and targets them) is the location on record
                p.locations = (f"Provenance/{marker}",)
                continue
            todo.append(p)
        if not todo:
            return
        try:
            outcomes = self.sink.apply([p.item for p in todo])
        except Exception as exc:  # the store is down: every message of the batch retries
            _LOG.warning("store commit failed: %s", exc)
            for p in todo:
                p.error, p.retry = f"store: {exc}", True
            return
        for p, outcome in zip(todo, outcomes, strict=True):
            if 200 <= outcome.status < 300:
                p.locations = outcome.locations
            else:
                p.error = f"store {outcome.status}: {outcome.detail}"
                p.retry = outcome.status >= 500 or outcome.status in (409, 412, 429)
