"""Tamper-evident audit trail: BALP AuditEvents in a hash chain (issue 9, item 3).

:mod:`events` builds the AuditEvents, :mod:`chain` links them, :mod:`log` stores
and verifies them, :mod:`writer` group-commits the records of reads, :mod:`index`
copies them into searchable AuditEvent resources. See
https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

from cmio.security.audit.chain import ChainReport, canonical, verify_rows
from cmio.security.audit.events import AuditFacts, build_event, outcome_code
from cmio.security.audit.index import AuditIndex
from cmio.security.audit.log import AuditLog
from cmio.security.audit.writer import AuditWriter

__all__ = [
    "AuditFacts",
    "AuditIndex",
    "AuditLog",
    "AuditWriter",
    "ChainReport",
    "build_event",
    "canonical",
    "outcome_code",
    "verify_rows",
]
