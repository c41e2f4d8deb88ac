"""Deterministic identifiers and timestamps for generated resources.

Ids are name-based UUIDs (version 5, RFC 4122 section 4.3) of ``seed/path``, so the
same seed always yields the same ids and patients can be generated independently
in any process. Timestamps are minutes since midnight of the simulation's first
day, rendered as FHIR ``instant``/``dateTime`` strings in a fixed UTC-05:00 offset
(https://hl7.org/fhir/R4/datatypes.html#dateTime).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["MINUTES_PER_DAY", "Clock", "IdMaker", "uuid5"]

MINUTES_PER_DAY = 1440
_NAMESPACE = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")  # RFC 4122 URL namespace
_OFFSET = "-05:00"


def uuid5(name: str) -> str:
    """The version-5 UUID of ``name`` in the URL namespace, as a lowercase string."""
    h = bytearray(hashlib.sha1(_NAMESPACE + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class IdMaker:
    """Issues the ids of one patient's resources: ``uuid5(prefix)`` with its last 32 bits
    replaced by a counter (1, 2, 3...): one hash per patient, unique across patients
    (they differ in the 90 hashed bits left), UUID-shaped and deterministic."""

    __slots__ = ("_head", "_n")

    def __init__(self, prefix: str) -> None:
        self._head = uuid5(prefix)[:-8]
        self._n = 0

    def __call__(self) -> str:
        """The next id."""
        self._n += 1
        return f"{self._head}{self._n:08x}"


@dataclass(frozen=True, slots=True)
class Clock:
    """Calendar of the simulation: day 0 is ``start``; covers ``days`` days (plus margin).

    Attributes:
        start: first simulated day.
        days: number of simulated days.
    """

    start: date
    days: int
    _dates: tuple[str, ...] = field(init=False, repr=False)
    _weekdays: bytes = field(init=False, repr=False)
    _times: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        span = [self.start + timedelta(days=d) for d in range(self.days + 400)]
        object.__setattr__(self, "_dates", tuple(d.isoformat() for d in span))
        object.__setattr__(self, "_weekdays", bytes(d.weekday() for d in span))
        times = tuple(
            f"T{m // 60:02d}:{m % 60:02d}:{(m * 7) % 60:02d}{_OFFSET}"
            for m in range(MINUTES_PER_DAY)
        )
        object.__setattr__(self, "_times", times)

    @property
    def end(self) -> date:
        """The last simulated day."""
        return self.start + timedelta(days=self.days - 1)

    def date(self, day: int) -> str:
        """``YYYY-MM-DD`` of a simulation day (negative days are before the start)."""
        if 0 <= day < len(self._dates):
            return self._dates[day]
        return (self.start + timedelta(days=day)).isoformat()

    def weekday(self, day: int) -> int:
        """Weekday of a simulation day (0 = Monday)."""
        if 0 <= day < len(self._weekdays):
            return self._weekdays[day]
        return (self.start + timedelta(days=day)).weekday()

    def instant(self, minute: int) -> str:
        """FHIR ``instant`` of a minute since the start (seconds derived from the minute)."""
        day, rest = divmod(minute, MINUTES_PER_DAY)
        if 0 <= day < len(self._dates):
            return self._dates[day] + self._times[rest]
        return self.date(day) + self._times[rest]

    def day_of(self, when: dt.date) -> int:
        """The simulation day of a calendar date."""
        return (when - self.start).days
