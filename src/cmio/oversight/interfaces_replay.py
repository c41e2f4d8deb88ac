"""Replay of parked HL7 v2 messages from the interface monitor, as ``cmio hl7 replay``.

Each message goes back to ``received`` in the engine's journal and through its channel's
processor again (:mod:`cmio.interfaces.hl7v2.engine.processor`). Re-exported by
:mod:`cmio.oversight.interfaces`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cmio.interfaces.hl7v2.engine.channels import ChannelConfig, RetryPolicy
from cmio.interfaces.hl7v2.engine.destinations import TransactionSink
from cmio.interfaces.hl7v2.engine.journal import Journal
from cmio.interfaces.hl7v2.engine.processor import Processor

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One replayed message's outcome: its new state, and the error when it failed again."""

    id: int
    control_id: str
    state: str
    error: str


def replay(
    journal: str | Path,
    ids: Sequence[int],
    sink: TransactionSink,
    *,
    channels: Sequence[ChannelConfig] = (),
    timeout: float = 120.0,
) -> list[ReplayResult]:
    """Process parked messages again (after the cause was fixed), as ``cmio hl7 replay``.

    Each message goes back to ``received`` (durably) and through its channel's processor
    into ``sink``; a channel without a configuration in ``channels`` gets the default one
    (the standard mapping, the store destination, one attempt: a replay is a person's
    single try, answered at once; a message that fails again goes back to the queue).

    Raises:
        KeyError: an id that is not in the error queue.
    """
    book = Journal(journal)
    book.start()
    try:
        found = {r["id"]: r for r in book.rows(ids=ids, states=["error"])}
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"not in the error queue: {missing}")
        configs = {c.name: c for c in channels}
        by_channel: dict[str, list[int]] = {}
        for i in ids:
            by_channel.setdefault(str(found[i]["channel"]), []).append(i)
        for name, chosen in by_channel.items():
            config = configs.get(name) or ChannelConfig(
                name=name, journal=str(journal), retry=RetryPolicy(max_attempts=1)
            )
            processor = Processor(config, book, sink)
            try:
                processor.submit(book.requeue(chosen))
                processor.start()
                processor.drain(timeout=timeout)
            finally:
                processor.stop()
        after = book.rows(ids=ids)
    finally:
        book.close()
    return [
        ReplayResult(int(r["id"]), str(r["control_id"]), str(r["state"]), str(r["error"] or ""))
        for r in after
    ]
