"""One batch of journaled messages: parse, filter, map, deliver; the outcomes to record.

:class:`BatchApplier` is the part of a channel's processor that does the work on a
batch (:mod:`.processor` keeps the queue, the thread, retries and the journal
bookkeeping). Every message of a batch goes to the FHIR store in one commit, each
Bundle in its own savepoint (https://www.sqlite.org/lang_savepoint.html), then to the
channel's folders and MLLP peers. Exactly once: a message that may already have
reached the store (recovered after a restart, or retried) is checked for its marker
Provenance first (:func:`~cmio.interfaces.hl7v2.engine.destinations.marker_id`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cmio.interfaces.hl7v2.engine.channeltypes import ChannelConfig
from cmio.interfaces.hl7v2.engine.destinations import (
    DownstreamError,
    FolderDestination,
    MllpDestination,
    SinkItem,
    TransactionSink,
    marker_id,
    marker_resource,
    with_marker,
)
from cmio.interfaces.hl7v2.engine.journal import StateUpdate
from cmio.interfaces.hl7v2.engine.records import JournalRow
from cmio.interfaces.hl7v2.engine.steps import (
    MappedMessage,
    Mapper,
    Prepared,
    Work,
    describe_unmapped,
    passes_filters,
)
from cmio.interfaces.hl7v2.errors import ParseError
from cmio.interfaces.hl7v2.message import Message
from cmio.interfaces.hl7v2.parser import parse

__all__ = ["BatchApplier", "BatchResult", "Remote", "default_mapper", "prepare_row"]

_LOG = logging.getLogger("cmio.hl7.processor")


@dataclass(slots=True)
class BatchResult:
    """What became of a batch.

    Attributes:
        updates: the journal states to record (processed, filtered, error).
        retries: messages whose delivery may succeed later, with the reason.
        processed: how many messages were delivered.
    """

    updates: list[StateUpdate] = field(default_factory=list)
    retries: list[tuple[Work, str]] = field(default_factory=list)
    processed: int = 0


Remote = tuple[SinkItem, list[str]] | StateUpdate | None
"""A message prepared in the worker process (:mod:`.prepworker`): its store item and unmapped
codes, or the outcome to record (parse error, filtered, mapping error); None: prepare it here."""


def default_mapper(
    channel: ChannelConfig,
    translate: Callable[[str, str], Sequence[tuple[str, str, str]]] | None = None,
    patient_links: Callable[[str, str], Sequence[Mapping[str, Any]]] | None = None,
) -> Mapper:
    """The v2-to-FHIR mapping with the channel's options (:mod:`cmio.interfaces.hl7v2.mapping`).

    Raises:
        ValueError: the channel's mapping options are wrong.
    """
    from cmio.interfaces.hl7v2.mapping import MappingOptions, map_message

    try:
        options = MappingOptions.from_dict(channel.mapping)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"channel {channel.name}: mapping: {exc}") from exc
    if translate is not None:  # local codes through the terminology's ConceptMaps
        options = dataclasses.replace(options, translate=translate)
    if patient_links is not None:  # merges survive later ADT updates
        options = dataclasses.replace(options, patient_links=patient_links)

    def mapper(message: Message, _options: dict[str, Any]) -> MappedMessage:
        return map_message(message, options)

    return mapper


def prepare_row(
    row: JournalRow, channel: ChannelConfig, mapper: Mapper
) -> tuple[SinkItem, Message, list[str]] | StateUpdate:
    """Parse, filter, map one journaled message and add its marker: the store item, the
    parsed message and the unmapped codes, or the outcome to record instead."""
    message = row.payload
    if not isinstance(message, Message):
        try:
            message = parse(row.raw)
        except ParseError as exc:
            return StateUpdate(row.id, "error", row.attempts + 1, error=f"parse: {exc}")
    failed = passes_filters(message, channel.filters)
    if failed is not None:
        return StateUpdate(
            row.id, "filtered", row.attempts, result=orjson.dumps({"filter": failed.path}).decode()
        )
    try:
        mapped = mapper(message, channel.mapping)
    except Exception as exc:  # the mapping refuses this message: park it with the reason
        _LOG.debug("mapping failed for journal row %d", row.id, exc_info=True)
        return StateUpdate(
            row.id, "error", row.attempts + 1, error=f"mapping: {type(exc).__name__}: {exc}"
        )
    recorded = datetime.fromtimestamp(row.received_at, UTC).isoformat(timespec="milliseconds")
    marker = marker_resource(
        mapped.bundle, marker_id(row.channel, row.sender, row.control_id),
        channel=row.channel, sender=row.sender, control_id=row.control_id, recorded=recorded,
    )  # fmt: skip
    merge = getattr(mapped, "merge", None)
    if merge is None:  # the marker commits atomically with the message's resources
        item = SinkItem(with_marker(mapped.bundle, marker))
    else:  # a merge comes after the Bundle; the marker last, once both are done
        item = SinkItem(mapped.bundle, merge, marker)
    item = dataclasses.replace(  # who sent it: its audit records name the sender
        item, channel=row.channel, sender=row.sender, control_id=row.control_id
    )
    return item, message, [describe_unmapped(u) for u in mapped.unmapped]


class BatchApplier:
    """Parses, filters, maps and delivers batches of one channel's messages.

    Args:
        channel: the channel configuration (filters, mapping options, destinations).
        sink: the FHIR store (required when a destination is ``store``).
        mapper: the v2-to-FHIR mapping (default: :mod:`cmio.interfaces.hl7v2.mapping`).
        translate: ConceptMap translation of local codes for the default mapping.
        patient_links: the stored patient's ``Patient.link`` entries by identifier
            (default mapping only).

    Raises:
        ValueError: the channel's mapping options are wrong, or a store destination
            has no store.
    """

    def __init__(
        self,
        channel: ChannelConfig,
        sink: TransactionSink | None,
        *,
        mapper: Mapper | None = None,
        translate: Callable[[str, str], Sequence[tuple[str, str, str]]] | None = None,
        patient_links: Callable[[str, str], Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.channel = channel
        self.sink = sink
        self.default_mapping = mapper is None
        if mapper is None:
            mapper = default_mapper(channel, translate, patient_links)
        self.mapper: Mapper = mapper
        self._folders = [FolderDestination(d.path) for d in channel.destinations
                         if d.type == "folder" and d.path]  # fmt: skip
        self._peers = [MllpDestination(d.host, d.port) for d in channel.destinations
                       if d.type == "mllp" and d.host and d.port]  # fmt: skip
        self._to_store = any(d.type == "store" for d in channel.destinations)
        if self._to_store and sink is None:
            raise ValueError(f"channel {channel.name}: a store destination needs a store")

    def close(self) -> None:
        """Close the connections to the MLLP peers."""
        for peer in self._peers:
            peer.close()

    def apply(self, batch: list[Work], remote: Sequence[Remote] | None = None) -> BatchResult:
        """Handle one batch: parse, filter, map, deliver.

        Args:
            batch: at most one message per patient.
            remote: each message as the worker process prepared it (None: all here).

        Returns:
            The outcomes to record and the messages to retry; nothing is recorded here.
        """
        result = BatchResult()
        ready: list[Prepared] = []
        for i, work in enumerate(batch):
            there = remote[i] if remote is not None else None
            if isinstance(there, StateUpdate):
                prepared, update = None, there
            elif there is not None:
                prepared, update = Prepared(work, None, there[0], there[1]), None
            else:
                prepared, update = self._prepare(work)
            if update is not None:
                result.updates.append(update)
            elif prepared is not None:
                ready.append(prepared)
        if ready:
            self._deliver(ready)
        finished = time.time()  # the store committed: what it wrote is queryable from now
        for p in ready:
            row = p.work.row
            if p.retry:
                result.retries.append((p.work, p.error or "downstream failure"))
            elif p.error is not None:
                result.updates.append(
                    StateUpdate(row.id, "error", row.attempts + 1, error=p.error, at=finished)
                )
            else:
                done = {"resources": list(p.locations), "unmapped": p.unmapped}
                result.updates.append(
                    StateUpdate(row.id, "processed", row.attempts + 1,
                                result=orjson.dumps(done).decode(), at=finished)
                )  # fmt: skip
                result.processed += 1
        return result

    def _prepare(self, work: Work) -> tuple[Prepared | None, StateUpdate | None]:
        got = prepare_row(work.row, self.channel, self.mapper)
        if isinstance(got, StateUpdate):
            return None, got
        item, message, unmapped = got
        return Prepared(work, message, item, unmapped), None

    def _deliver(self, ready: list[Prepared]) -> None:
        if self._to_store:
            self._to_sink(ready)
        for p in ready:
            if p.error is not None:
                continue
            try:
                name = f"{self.channel.name}-{p.work.row.id}"
                for folder in self._folders:
                    folder.write(name, p.item.bundle)
                for peer in self._peers:
                    peer.send(p.work.row.raw)
            except DownstreamError as exc:
                p.error, p.retry = str(exc), exc.retryable

    def _to_sink(self, ready: list[Prepared]) -> None:
        assert self.sink is not None
        todo: list[Prepared] = []
        for p in ready:
            row = p.work.row
            marker = marker_id(row.channel, row.sender, row.control_id)
            if (row.recovered or row.attempts) and self.sink.exists("Provenance", marker):
                # applied before a crash or a lost reply: the marker (which commits with
                # the message's resources and targets them) is the location on record
                p.locations = (f"Provenance/{marker}",)
                continue
            todo.append(p)
        if not todo:
            return
        try:
            outcomes = self.sink.apply([p.item for p in todo])
        except Exception as exc:  # the store is down: every message of the batch retries
            _LOG.warning("store commit failed: %s", exc)
            for p in todo:
                p.error, p.retry = f"store: {exc}", True
            return
        for p, outcome in zip(todo, outcomes, strict=True):
            if 200 <= outcome.status < 300:
                p.locations = outcome.locations
            else:
                p.error = f"store {outcome.status}: {outcome.detail}"
                p.retry = outcome.status >= 500 or outcome.status in (409, 412, 429)
