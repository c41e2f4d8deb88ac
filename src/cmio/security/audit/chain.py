"""The tamper-evident hash chain over the audit table.

Record ``n`` is stored with ``hash_n = sha256(hash_{n-1} || canonical bytes)``
where the canonical bytes are the AuditEvent as JSON with sorted keys and no
whitespace (in the spirit of RFC 8785), and ``hash_0`` is 64 zeros. Changing,
removing or reordering a stored record breaks every later link, so
:func:`verify_rows` finds the first bad sequence number. A truncated tail leaves
a valid (shorter) chain: a checkpoint of the head kept elsewhere
(:func:`make_checkpoint`, an HMAC-signed file) reveals it. See RFC 6962 §2.1
for the same idea in Certificate Transparency logs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cmio.security.audit.template import Canonical
from cmio.store._audit import AuditRow

__all__ = [
    "GENESIS",
    "ChainReport",
    "canonical",
    "chain_rows",
    "check_checkpoint",
    "link",
    "make_checkpoint",
    "verify_rows",
]

GENESIS = "0" * 64
"""The hash before the first record."""


def canonical(event: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a record: JSON, keys sorted at every level, no whitespace."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def link(previous: str, data: bytes) -> str:
    """``sha256(previous hash || data)`` as hex."""
    return hashlib.sha256(previous.encode("ascii") + data).hexdigest()


def chain_rows(
    head: tuple[int, str] | None, events: Sequence[Mapping[str, Any] | Canonical]
) -> list[AuditRow]:
    """The rows that append ``events`` (AuditEvents, or records already in canonical form)
    after ``head`` (``(seq, hash)``; None: empty log)."""
    seq, previous = head if head is not None else (0, GENESIS)
    rows: list[AuditRow] = []
    sha256 = hashlib.sha256
    for event in events:
        if isinstance(event, Canonical):
            data, recorded = event
        else:
            data, recorded = canonical(event), str(event.get("recorded", ""))
        seq += 1
        previous = sha256(previous.encode("ascii") + data).hexdigest()
        rows.append(AuditRow(seq, recorded, data, previous))
    return rows


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of walking the chain.

    Attributes:
        ok: True when every link holds (and the checkpoint, if given, matches).
        count: records checked.
        head: the last ``(seq, hash)`` seen (None: empty).
        broken_at: the first sequence number that is missing, altered or out of place.
        reason: what is wrong at ``broken_at``.
    """

    ok: bool
    count: int
    head: tuple[int, str] | None
    broken_at: int | None = None
    reason: str | None = None


def verify_rows(rows: Iterable[AuditRow]) -> ChainReport:
    """Walk rows in ``seq`` order and check every link.

    Detects a modified record (its hash no longer matches), a deleted one (a gap
    in ``seq`` or a broken link), and reordered ones (links no longer follow).
    """
    expected_seq, previous, count = 1, GENESIS, 0
    head: tuple[int, str] | None = None
    for row in rows:
        if row.seq != expected_seq:
            reason = (
                f"record {expected_seq} is missing (next stored is {row.seq})"
                if row.seq > expected_seq
                else f"record {row.seq} is out of order"
            )
            return ChainReport(False, count, head, expected_seq, reason)
        if link(previous, row.data) != row.hash:
            reason = (
                f"record {row.seq} does not match its hash (altered or out of place)"
                if _parses(row.data)
                else f"record {row.seq} is not valid JSON"
            )
            return ChainReport(False, count, head, row.seq, reason)
        previous, expected_seq, count = row.hash, row.seq + 1, count + 1
        head = (row.seq, row.hash)
    return ChainReport(True, count, head)


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _signature(key: bytes, seq: int, hash_: str) -> str:
    return hmac.new(key, f"{seq}:{hash_}".encode("ascii"), hashlib.sha256).hexdigest()


def make_checkpoint(head: tuple[int, str], key: bytes, at: str) -> dict[str, Any]:
    """A signed checkpoint of the chain head (HMAC-SHA256 over ``seq:hash``)."""
    seq, hash_ = head
    return {"seq": seq, "hash": hash_, "at": at, "hmac": _signature(key, seq, hash_)}


def check_checkpoint(
    checkpoint: Mapping[str, Any], key: bytes, hash_at: Mapping[int, str]
) -> str | None:
    """Compare a checkpoint with the chain; None when it holds, else what is wrong.

    ``hash_at`` maps sequence numbers to the stored hashes (at least the checkpoint's).
    """
    seq, hash_ = int(checkpoint["seq"]), str(checkpoint["hash"])
    if not hmac.compare_digest(_signature(key, seq, hash_), str(checkpoint.get("hmac", ""))):
        return "the checkpoint's signature does not match (wrong key or altered file)"
    stored = hash_at.get(seq)
    if stored is None:
        return f"record {seq} of the checkpoint is missing: the log was truncated"
    if stored != hash_:
        return f"record {seq} differs from the checkpoint"
    return None
