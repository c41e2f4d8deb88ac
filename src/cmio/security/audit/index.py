"""AuditEvent resources for FHIR search, materialized lazily from the audit table.

The hash-chained table is the record; privacy officers search a copy of it as
ordinary AuditEvent resources (``GET [base]/AuditEvent?patient=&agent=&date=&action=``,
https://hl7.org/fhir/R4/auditevent.html#search). :meth:`AuditIndex.sync` copies the
rows after a saved cursor (``job_state`` ``audit-index``) with the bulk
update-as-create path (search-index rows computed before the write lock is taken),
so the cost of indexing is paid by whoever searches the trail, in batches, and not by
every read and write the trail records. Copying is idempotent: two concurrent syncs
store each event once.
"""

from __future__ import annotations

import json

import orjson

from cmio.security.audit.log import AuditLog

__all__ = ["JOB", "AuditIndex"]

JOB = "audit-index"
"""The ``job_state`` row holding the last sequence number copied."""


class AuditIndex:
    """Copies audit records into searchable AuditEvent resources."""

    def __init__(self, log: AuditLog, batch: int = 500) -> None:
        self.log = log
        self.batch = batch

    def position(self) -> int:
        """The last sequence number copied (0: none)."""
        with self.log.repository.read_transaction() as tx:
            return _seq(tx.job_state(JOB))

    def sync(self) -> int:
        """Copy every record not copied yet; returns how many were copied.

        Each batch is read and search-indexed outside any write transaction; the write
        lock is held only to store it (and is skipped if another sync stored it first).
        """
        self.log.settle()  # the records of reads still in an audit journal
        repository, done = self.log.repository, 0
        table_rows = getattr(repository.indexer, "table_rows", None)
        while True:
            with repository.read_transaction() as tx:
                after = _seq(tx.job_state(JOB))
                rows = tx.audit_rows(after, self.batch)
            if not rows:
                return done
            events = [orjson.loads(row.data) for row in rows]
            index = None
            if table_rows is not None:  # rows keyed as put_many stores them
                index = [
                    {
                        t: [("AuditEvent", e["id"], *r) for r in rs]
                        for t, rs in table_rows(e).items()
                    }
                    for e in events
                ]
            with repository.transaction() as tx:
                if _seq(tx.job_state(JOB)) != after:
                    continue  # a concurrent sync copied this batch
                tx.put_many(events, index)
                tx.set_job_state(JOB, json.dumps({"seq": rows[-1].seq}))
            done += len(rows)
            if len(rows) < self.batch:
                return done


def _seq(state: str | None) -> int:
    return int(json.loads(state)["seq"]) if state else 0
