"""The processing steps around the mapping: the mapping's contract, filters, unmapped codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cmio.interfaces.hl7v2.engine.channeltypes import FieldFilter
from cmio.interfaces.hl7v2.engine.destinations import SinkItem
from cmio.interfaces.hl7v2.engine.records import JournalRow
from cmio.interfaces.hl7v2.message import Message

__all__ = ["MappedMessage", "Mapper", "Prepared", "Work", "describe_unmapped", "passes_filters"]


class MappedMessage(Protocol):
    """What a mapping returns: a transaction Bundle and the codes it could not map."""

    @property
    def bundle(self) -> dict[str, Any]:
        """The FHIR transaction Bundle."""
        ...

    @property
    def unmapped(self) -> Sequence[Any]:
        """Codes kept as sent because no map knew them."""
        ...

    @property
    def merge(self) -> Any:
        """An ADT^A40 merge to apply after the Bundle, or None."""
        ...


Mapper = Callable[[Message, dict[str, Any]], MappedMessage]
"""``mapper(message, options) -> MappedMessage``; raises on a message it cannot map."""


def passes_filters(message: Message, filters: Sequence[FieldFilter]) -> FieldFilter | None:
    """The first filter the message fails, or None when it passes them all."""
    for f in filters:
        seg = message.segment(f.segment)
        value = "" if seg is None else seg.get(f.field, 1, f.component or 1, f.subcomponent or 1)
        if not f.accepts(value):
            return f
    return None


def describe_unmapped(item: Any) -> str:
    """One unmapped code as text: ``path system|code (display): reason``."""
    if isinstance(item, str):
        return item
    path, system, code = (getattr(item, k, None) for k in ("path", "system", "code"))
    if code is None:
        return str(item)
    display = getattr(item, "display", None)
    reason = getattr(item, "reason", None)
    text = f"{path} {system}|{code}" + (f" ({display})" if display else "")
    return f"{text}: {reason}" if reason else text


@dataclass(slots=True)
class Work:
    """A journaled message waiting, with its ordering key and earliest next attempt."""

    row: JournalRow
    key: str
    not_before: float = 0.0


@dataclass(slots=True)
class Prepared:
    """A mapped message on its way to the destinations, and how that went."""

    work: Work
    message: Message | None  # None: prepared in the worker process
    item: SinkItem
    unmapped: list[str] = field(default_factory=list)
    locations: tuple[str, ...] = ()
    error: str | None = None
    retry: bool = False
