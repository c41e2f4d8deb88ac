"""The single writer of a bulk import.

Resources are deduplicated by ``type/id`` for the whole run (the first
occurrence wins, so re-running an import whose files disagree about a resource
stays idempotent) and written in batches with ``Transaction.put_many``, which
skips resources whose content is unchanged. Batches are committed by a
dedicated database thread, so the commit's I/O overlaps with decoding the next
batch (sqlite3 and psycopg release the GIL while they wait).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cmio.bulk.parser import ChunkResult, Deferred
from cmio.bulk.report import ImportSummary, Rejected, ReportWriter
from cmio.store import format_instant
from cmio.store.base import Repository, StoredResource, TableRows, Transaction

__all__ = ["BatchAudit", "BatchWriter"]

Json = dict[str, Any]
BatchAudit = Callable[[Transaction, Sequence[StoredResource], Sequence[Json]], None]
"""Records a batch's writes in its transaction (the versions written, their resources)."""


class BatchWriter:
    """Collects parsed resources and writes them in batches (see module docstring).

    Call :meth:`close` at the end: it writes what is left, stops the thread and
    adds the write counts to the summary.
    """

    def __init__(
        self,
        repository: Repository,
        summary: ImportSummary,
        report: ReportWriter,
        batch_size: int,
        *,
        queued_batches: int = 2,
        audit: BatchAudit | None = None,
        expected: int = 0,
    ) -> None:
        self.repository = repository
        self.expected = expected
        """Estimated resources to write (``Repository.bulk_load`` tunes for it)."""
        self.audit = audit
        """Called inside each batch's transaction (the audit trail: issue 9)."""
        self.summary = summary
        self.report = report
        self.batch_size = batch_size
        self.batch: list[Json] = []
        self.rows: list[TableRows | None] = []
        """Precomputed index rows of ``batch`` (aligned; None: the store extracts them)."""
        self.seen: set[int] = set()
        self.handled = 0
        """Resources counted by the main thread (rejected, duplicates, matched)."""
        self.rejected = 0
        self.stored = 0
        """Resources written or found unchanged by the database thread."""
        self._tallies: dict[str, list[int]] = {}
        self._last_written = ""
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[list[Json], list[TableRows | None]] | None] = queue.Queue(
            maxsize=queued_batches
        )
        self._thread = threading.Thread(target=self._loop, name="cmio-import-writer", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def resources(self) -> int:
        """Resources fully handled so far (stored, unchanged or rejected)."""
        return self.handled + self.stored

    # -- main thread --------------------------------------------------------------------

    def reject(self, rejected: Rejected) -> None:
        """Report a rejected resource."""
        self.report.write(rejected)
        self.summary.counts(rejected.resource_type or "(unknown)").rejected += 1
        self.handled += 1
        self.rejected += 1

    def claim(self, rtype: str, rid: str) -> bool:
        """Record ``type/id`` for this run; False if an earlier occurrence claimed it."""
        key = hash((rtype, rid))
        if key in self.seen:
            self.summary.counts(rtype).unchanged += 1
            self.handled += 1
            return False
        self.seen.add(key)
        return True

    def consume(self, result: ChunkResult) -> list[Deferred]:
        """Take one parser result; returns its deferred resources (not yet claimed)."""
        for rejected in result.rejected:
            self.reject(rejected)
        for rtype, n in result.matched.items():
            self.summary.counts(rtype).unchanged += n
            self.handled += n
        if result.count:
            self.add(orjson.loads(result.ready), result.index)
        return result.deferred

    def add(
        self, resources: Sequence[Json], index: Sequence[TableRows | None] | None = None
    ) -> None:
        """Queue resources (with their precomputed index rows, if any) for writing;
        a full batch goes to the database thread."""
        seen, size, batch, rows = self.seen, self.batch_size, self.batch, self.rows
        counts = self.summary.counts
        for position, resource in enumerate(resources):
            rtype = resource["resourceType"]
            key = hash((rtype, resource["id"]))
            if key in seen:
                counts(rtype).unchanged += 1
                self.handled += 1
                continue
            seen.add(key)
            batch.append(resource)
            rows.append(index[position] if index is not None else None)
            if len(batch) >= size:
                self._submit()
                batch, rows = self.batch, self.rows

    def add_claimed(self, resource: Json) -> None:
        """Queue a resource whose ``type/id`` was already claimed."""
        self.batch.append(resource)
        self.rows.append(None)
        if len(self.batch) >= self.batch_size:
            self._submit()

    def _submit(self) -> None:
        self._check()
        if self.batch:
            batch, rows = self.batch, self.rows
            self.batch, self.rows = [], []
            self._queue.put((batch, rows))

    def flush(self) -> None:
        """Write everything queued and wait until it is committed."""
        self._submit()
        self._queue.join()
        self._check()

    def close(self, abort: bool = False) -> None:
        """Flush (unless ``abort``), stop the database thread, add its counts to the summary."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None and not abort:
                self.flush()
        finally:
            self._queue.put(None)
            self._thread.join()
            for rtype, (created, updated, unchanged) in self._tallies.items():
                c = self.summary.counts(rtype)
                c.created += created
                c.updated += updated
                c.unchanged += unchanged
        self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    # -- database thread ----------------------------------------------------------------

    def _loop(self) -> None:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.repository.bulk_load(self.expected))
            except Exception as exc:  # the batches still get answered (with this error)
                self._error = exc
            self._serve()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self._write(*item)
            except BaseException as exc:
                self._error = exc
            finally:
                self._queue.task_done()

    def _write(self, batch: list[Json], rows: list[TableRows | None]) -> None:
        # Versions written by this call get lastUpdated >= start; unchanged ones keep
        # an older instant. Waiting for the clock to pass the previous batch's
        # instant keeps that test exact across batches.
        start = format_instant(datetime.now(UTC))
        while start <= self._last_written:
            time.sleep(0.0005)
            start = format_instant(datetime.now(UTC))
        with self.repository.transaction() as tx:
            stored = tx.put_many(batch, rows if any(r is not None for r in rows) else None)
            if self.audit is not None:  # versions written now (not the unchanged ones)
                new = [n for n, item in enumerate(stored) if item.last_updated >= start]
                self.audit(tx, [stored[n] for n in new], [batch[n] for n in new])
        tallies = self._tallies
        last = self._last_written
        for item in stored:
            tally = tallies.get(item.type)
            if tally is None:
                tally = tallies[item.type] = [0, 0, 0]
            if item.last_updated >= start:
                tally[0 if item.version == 1 else 1] += 1
                if item.last_updated > last:
                    last = item.last_updated
            else:
                tally[2] += 1
        self._last_written = last
        self.stored += len(stored)
