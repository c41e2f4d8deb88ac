"""What the journal stores and returns: entries, receipts, rows to process, outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "JournalRow", "Receipt", "StateUpdate"]


@dataclass(slots=True)
class Entry:
    """A message to journal.

    Attributes:
        channel: channel name.
        sender: duplicate scope (MSH-3 and MSH-4).
        control_id: MSH-10.
        message_type: ``ORU^R01`` (empty when unknown).
        version: MSH-12.
        patient_key: per-patient ordering key (None: no patient).
        raw: the message bytes as received.
        ack_code: the ACK it gets (``AA``, ``AE``, ``AR``).
        error: the reason of an AE/AR.
        received_at: epoch seconds.
        payload: in-memory companion (the parsed message), not stored.
    """

    channel: str
    sender: str
    control_id: str
    message_type: str
    version: str
    patient_key: str | None
    raw: bytes
    ack_code: str
    error: str | None = None
    received_at: float = 0.0
    payload: Any = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The journal's answer to an append: the row id, and whether it was a duplicate."""

    id: int
    duplicate: bool
    ack_code: str


@dataclass(slots=True)
class JournalRow:
    """A message waiting to be processed, as the processor sees it."""

    id: int
    channel: str
    sender: str
    control_id: str
    message_type: str
    patient_key: str | None
    raw: bytes
    received_at: float
    attempts: int = 0
    recovered: bool = False
    payload: Any = None


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """A processing outcome to record."""

    id: int
    state: str
    attempts: int
    error: str | None = None
    result: str | None = None
    next_attempt_at: float | None = None
    at: float | None = None
    """When the outcome happened (epoch seconds; None: when the journal records it)."""
