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
first (:func:`~cmio.interfaces.hl7v2.engine.destinations.marker_id`). This module keeps
the queue, the thread, retries and the journal bookkeeping; the work on one batch is
:class:`~cmio.interfaces.hl7v2.engine.batch.BatchApplier`'s.

Two cores: once ``worker_after`` messages wait, a worker process
(:mod:`~cmio.interfaces.hl7v2.engine.prepworker`) starts; when ready, it prepares the next
batch while this thread applies the previous one. A patient's next message is taken only
once the batch holding its previous one is applied (or requeued), so the order per patient
and the retries are as without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cmio.interfaces.hl7v2.engine.appack import AppAckSender, Outcome
from cmio.interfaces.hl7v2.engine.batch import BatchApplier, Remote
from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig
from cmio.interfaces.hl7v2.engine.destinations import TransactionSink
from cmio.interfaces.hl7v2.engine.journal import Journal, JournalRow, StateUpdate
from cmio.interfaces.hl7v2.engine.prepworker import PrepWorker, sink_state, spec_of
from cmio.interfaces.hl7v2.engine.steps import Mapper, Work

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
        worker_after: start the preparation worker process once this many messages wait
            (None: never; 0: at start). Only with the default mapping and a sink that
            offers ``ahead_spec``.
        on_worker: called once a started worker is ready or has failed to start.
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
        worker_after: int | None = None,
        on_worker: Callable[[PrepWorker], None] | None = None,
    ) -> None:
        self.channel = channel
        self.journal = journal
        self._applier = BatchApplier(
            channel, sink, mapper=mapper, translate=translate, patient_links=patient_links
        )
        self.sink = sink
        self.mapper: Mapper = self._applier.mapper
        self.max_batch = max_batch
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
        eligible = self._applier.default_mapping and hasattr(sink, "ahead_spec")
        self.worker_after = worker_after if eligible else None
        self.worker: PrepWorker | None = None
        self.on_worker = on_worker
        self._asks_store = translate is not None or patient_links is not None

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
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        self._applier.close()
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
        pending: list[Work] = []  # a batch the worker prepares, applied next
        number: int | None = None  # its number at the worker
        if self.worker_after == 0 and self.worker is None:
            self._to_worker([], 0, False)  # starts it (here: the sink may wait for its store)
        while True:
            with self._cond:
                self._refill()
                busy = {w.key for w in pending}  # their next messages wait for them
                batch = self._take(busy)
                while not batch and not pending and not self._stop:
                    self._cond.wait(self._next_wait())
                    self._refill()
                    batch = self._take(busy)
                if self._stop:
                    for work in reversed(pending + batch):
                        self._queue.appendleft(work)
                    self._cond.notify_all()
                    return
                self._busy = True
                waiting = len(self._queue)
            sent = self._to_worker(batch, waiting, bool(pending)) if batch else None
            for todo, at in ((pending, number), ([] if sent else batch, None)):
                if todo:
                    self._process_safely(todo, at)
            pending, number = (batch, sent) if sent else ([], None)
            if not pending:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process_safely(self, batch: list[Work], number: int | None) -> None:
        try:
            prepared = None
            if number is not None and self.worker is not None:
                prepared = self.worker.result(number, [w.row for w in batch])
            self.process(batch, prepared)
        except Exception:  # never lose the thread: requeue the batch for a retry
            _LOG.exception("processing a batch of %d messages failed", len(batch))
            self._requeue([(w, "internal error while processing") for w in batch])

    def _to_worker(self, batch: list[Work], waiting: int, overlapping: bool) -> int | None:
        """Send the batch to the worker (its number there; None: prepare it here), starting
        the worker once enough messages wait. Never raises (the writer then prepares)."""
        try:
            return self._hand_over(batch, waiting, overlapping)
        except Exception:  # e.g. the store behind the sink is not open: prepare here
            _LOG.exception("handing a batch to the preparation worker failed")
            return None

    def _hand_over(self, batch: list[Work], waiting: int, overlapping: bool) -> int | None:
        """A lone message with nothing else to apply is prepared here: no hand-off latency."""
        if self.worker_after is None:
            return None
        if self.worker is None:
            if len(batch) + waiting < self.worker_after:
                return None
            self._start_worker()
        worker = self.worker
        if not batch or worker is None or worker.failed or not worker.ready:
            return None
        if len(batch) + waiting < 2 and not overlapping:
            return None
        spec, worker.known_at, known = sink_state(self.sink, worker.known_at)
        return worker.submit([w.row for w in batch], spec, known)

    def _start_worker(self) -> None:
        self.worker = PrepWorker(
            self.channel, asks_store=self._asks_store, on_settled=self.on_worker
        )
        self.worker.start(spec_of(self.sink))

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [w.not_before - now for w in self._queue if w.not_before > now]
        return max(0.001, min(waits)) if waits else 1.0

    def _take(self, busy: set[str] | None = None) -> list[Work]:
        """Up to ``max_batch`` ready messages, at most one per patient, the oldest of each
        (none of a patient in ``busy``)."""
        now = time.monotonic()
        seen: set[str] = set(busy or ())
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

    def process(self, batch: list[Work], prepared: Sequence[Remote] | None = None) -> None:
        """Handle one batch: parse, filter, map, deliver (:class:`BatchApplier`), record.

        ``prepared``: the batch as the worker prepared it (None: prepare it here).
        """
        result = self._applier.apply(batch, prepared)
        self.processed += result.processed
        if result.updates:
            self._record(result.updates, {w.row.id: w.row for w in batch})
        if result.retries:
            self._requeue(result.retries)
