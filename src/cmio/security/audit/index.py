"""AuditEvent resources for FHIR search, materialized lazily from the audit table.

The hash-chained table is the record; privacy officers search a copy of it as
ordinary AuditEvent resources (``GET [base]/AuditEvent?patient=&agent=&date=&action=``,
https://hl7.org/fhir/R4/auditevent.html#search). :meth:`AuditIndex.sync` copies the
rows after a saved cursor (``job_state`` ``audit-index``) with the bulk
update-as-create path, so the cost of indexing is paid by whoever searches the
trail, in batches, and not by every read and write the trail records. Copying is
idempotent: two concurrent syncs store each event once.
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

    def __init__(self, log: AuditLog, batch: int = 1000) -> None:
        self.log = log
        self.batch = batch

    def position(self) -> int:
        """The last sequence number copied (0: none)."""
        with self.log.repository.read_transaction() as tx:
            return _seq(tx.job_state(JOB))

    def sync(self) -> int:
        """Copy every record not copied yet; returns how many were copied."""
        repository, done = self.log.repository, 0
        while True:
            with repository.transaction() as tx:
                after = _seq(tx.job_state(JOB))
                rows = tx.audit_rows(after, self.batch)
                if rows:
                    tx.put_many([orjson.loads(row.data) for row in rows])
                    tx.set_job_state(JOB, json.dumps({"seq": rows[-1].seq}))
            done += len(rows)
            if len(rows) < self.batch:
                return done


def _seq(state: str | None) -> int:
    return int(json.loads(state)["seq"]) if state else 0
