"""The append-only audit table both SQL backends keep beside the resources.

Each row is one AuditEvent (canonical JSON) with its place in a hash chain
(``seq``, ``hash``); the chain itself is computed by :mod:`cmio.security.audit`.
Triggers refuse UPDATE and DELETE, so changing the log needs a deliberate schema
change, which the chain then reveals. See https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["AUDIT_DDL", "AuditRow", "as_bytes"]


class AuditRow(NamedTuple):
    """One audit record as stored.

    Attributes:
        seq: position in the chain, 1-based, without gaps.
        recorded: ``AuditEvent.recorded`` (for time-range export).
        data: the record's canonical JSON bytes (sorted keys, no whitespace).
        hash: hex ``sha256(previous hash || data)``.
    """

    seq: int
    recorded: str
    data: bytes
    hash: str


AUDIT_DDL: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TABLE IF NOT EXISTS audit_log (
            seq INTEGER PRIMARY KEY,
            recorded TEXT NOT NULL,
            data BLOB NOT NULL,
            hash TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_recorded ON audit_log (recorded)",
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    ],
    "postgres": [
        """CREATE TABLE IF NOT EXISTS audit_log (
            seq bigint PRIMARY KEY,
            recorded text COLLATE "C" NOT NULL,
            data text NOT NULL,
            hash text NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_recorded ON audit_log (recorded)",
        """CREATE OR REPLACE FUNCTION cmio_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
        """CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE
            ON audit_log FOR EACH ROW EXECUTE FUNCTION cmio_audit_append_only()""",
    ],
}
"""Statements creating the audit table (idempotent: safe on every start)."""

SELECT_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
INSERT_ROW = "INSERT INTO audit_log (seq, recorded, data, hash) VALUES (?, ?, ?, ?)"
SELECT_AFTER = "SELECT seq, recorded, data, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"


def as_bytes(value: object) -> bytes:
    """A stored ``data`` value as bytes (text if someone rewrote the row as text)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return str(value).encode()
