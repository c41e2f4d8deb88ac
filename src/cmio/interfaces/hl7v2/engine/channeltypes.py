"""The parts of a channel's configuration: source, acceptance, filters, destinations, retry.

These are the checked, immutable values that :mod:`.channels` builds from a channel's
YAML file and that the engine's runtime objects (:mod:`.processor`, :mod:`.server`,
:mod:`.retention`) read. Field paths in filters follow HL7 v2 (``SEG-n[.c[.s]]``,
https://www.hl7.org/implement/standards/product_brief.cfm?product_id=185).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cmio.interfaces.hl7v2.parser import SUPPORTED_VERSIONS

__all__ = [
    "DEFAULT_JOURNAL",
    "AcceptPolicy",
    "ChannelConfig",
    "ChannelError",
    "Destination",
    "FieldFilter",
    "Retention",
    "RetryPolicy",
    "Source",
]

DEFAULT_JOURNAL = "cmio-data/hl7/journal.db"


class ChannelError(ValueError):
    """A channel file that cannot be used; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where messages come from: an MLLP listener or a folder drop."""

    type: str = "mllp"
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 1 << 20
    idle_timeout: float = 300.0
    frame_timeout: float = 30.0
    path: str | None = None
    pattern: str = "*.hl7"
    poll_seconds: float = 1.0
    done: str | None = None
    max_connections: int = 256


@dataclass(frozen=True, slots=True)
class AcceptPolicy:
    """What the channel accepts; anything else is answered AR."""

    message_types: tuple[str, ...] = ()
    versions: tuple[str, ...] = SUPPORTED_VERSIONS
    processing_ids: tuple[str, ...] = ("P", "T", "D")


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """One condition on a field (``SEG-n[.c[.s]]``, first repetition, unescaped).

    Exactly one of ``values_in``, ``values_not_in`` and ``pattern`` is set.
    """

    segment: str
    field: int
    component: int | None
    subcomponent: int | None
    values_in: tuple[str, ...] | None = None
    values_not_in: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None

    @property
    def path(self) -> str:
        """The field path as written."""
        tail = "".join(f".{n}" for n in (self.component, self.subcomponent) if n is not None)
        return f"{self.segment}-{self.field}{tail}"

    def accepts(self, value: str) -> bool:
        """Whether a field value passes."""
        if self.values_in is not None:
            return value in self.values_in
        if self.values_not_in is not None:
            return value not in self.values_not_in
        assert self.pattern is not None
        return self.pattern.search(value) is not None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where processed messages go: ``store``, ``folder`` (FHIR Bundles) or ``mllp`` (forward)."""

    type: str
    path: str | None = None
    host: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries with exponential backoff on downstream failure, then the error queue."""

    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the journal keeps what is done with.

    Processed, filtered, duplicate and rejected rows older than ``days`` lose their
    message bytes; older than ``duplicate_window_days`` they are deleted. An accepted
    row's MSH-10 stays known (a resend is a duplicate) for ``duplicate_window_days``.
    The error queue and unprocessed messages are never pruned.
    """

    days: float = 30.0
    duplicate_window_days: float = 30.0
    prune_every: float = 3600.0


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One channel."""

    name: str
    journal: str = DEFAULT_JOURNAL
    source: Source = field(default_factory=Source)
    accept: AcceptPolicy = field(default_factory=AcceptPolicy)
    filters: tuple[FieldFilter, ...] = ()
    mapping: dict[str, Any] = field(default_factory=dict)
    destinations: tuple[Destination, ...] = (Destination("store"),)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    return_destination: Destination | None = None
    retention: Retention = field(default_factory=Retention)
