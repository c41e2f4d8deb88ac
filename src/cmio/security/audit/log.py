"""The audit log: append hash-chained AuditEvents, read them back, verify the chain.

Appends happen inside a store transaction (:meth:`AuditLog.append`), so the
record of a write commits or rolls back with the write; the chain head is
locked until that transaction ends (SQLite: the database write lock;
PostgreSQL: an advisory transaction lock). See https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cmio.security.audit.chain import ChainReport, chain_rows, check_checkpoint, verify_rows
from cmio.security.audit.segment import journal_directory
from cmio.security.audit.template import Canonical
from cmio.store._audit import AuditRow
from cmio.store.base import Repository, Transaction

__all__ = ["AuditLog"]

_LOG = logging.getLogger("cmio.security.audit")


class AuditLog:
    """The hash-chained audit table of one repository.

    With an embedded (SQLite) store, the records of reads may still wait in the audit
    journal beside the database file (:mod:`cmio.security.audit.journal`, at most a
    fraction of a second): reading the chain (:meth:`rows`, :meth:`verify`) first
    moves them in (:meth:`settle`), so no acknowledged record is missed.
    """

    def __init__(self, repository: Repository, page: int = 2000) -> None:
        self.repository = repository
        self.page = page
        self.journal_dir: Path | None = journal_directory(repository)
        """Where the audit journals of this store's servers live (None: no journal)."""

    def settle(self) -> int:
        """Move every record waiting in an audit journal into the chain (idempotent, safe
        while servers run); returns how many were moved."""
        if self.journal_dir is None or not self.journal_dir.is_dir():
            return 0
        from cmio.security.audit.journal import move_directory

        return move_directory(self, self.journal_dir)

    def append(
        self, tx: Transaction, events: Sequence[Mapping[str, Any] | Canonical]
    ) -> list[AuditRow]:
        """Append ``events`` (AuditEvents or canonical records) in ``tx`` (a write
        transaction); returns the rows written."""
        if not events:
            return []
        rows = chain_rows(tx.audit_head(), events)
        tx.audit_append(rows)
        return rows

    def append_now(self, events: Sequence[Mapping[str, Any] | Canonical]) -> list[AuditRow]:
        """Append in a transaction of its own (nested in the thread's open one, if any)."""
        with self.repository.transaction() as tx:
            return self.append(tx, events)

    def rows(self, after: int = 0) -> Iterator[AuditRow]:
        """Every row with ``seq > after`` in chain order, a page per short transaction
        (records waiting in an audit journal moved in first; if that fails, the chain as
        stored, and the failure logged)."""
        try:
            self.settle()
        except Exception:
            _LOG.exception("audit records waiting in a journal could not be moved into the chain")
        while True:
            with self.repository.read_transaction() as tx:
                page: list[AuditRow] = tx.audit_rows(after, self.page)
            yield from page
            if len(page) < self.page:
                return
            after = page[-1].seq

    def head(self) -> tuple[int, str] | None:
        """The last ``(seq, hash)`` (None: empty log); reads the whole chain's tail."""
        last: AuditRow | None = None
        for last in self.rows():  # noqa: B007 - the last row is the head
            pass
        return None if last is None else (last.seq, last.hash)

    def verify(
        self, checkpoint: Mapping[str, Any] | None = None, key: bytes | None = None
    ) -> ChainReport:
        """Walk the whole chain; with a signed ``checkpoint`` also detect a cut tail."""
        wanted = None if checkpoint is None else int(checkpoint["seq"])
        seen: dict[int, str] = {}

        def tap(rows: Iterator[AuditRow]) -> Iterator[AuditRow]:
            for row in rows:
                if row.seq == wanted:
                    seen[row.seq] = row.hash
                yield row

        report = verify_rows(tap(self.rows()))
        if not report.ok or checkpoint is None:
            return report
        problem = check_checkpoint(checkpoint, key or b"", seen)
        if problem is None:
            return report
        assert wanted is not None
        head_seq = report.head[0] if report.head else 0
        return ChainReport(False, report.count, report.head, min(wanted, head_seq + 1), problem)
