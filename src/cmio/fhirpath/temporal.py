"""Date, DateTime and Time values with partial precision.

See http://hl7.org/fhirpath/N1/#date, #datetime, #time and, for comparisons,
http://hl7.org/fhirpath/N1/#datetime-equality: values are compared component by
component from the year down; a component present in only one of them makes the
result uncertain (``None`` here, the empty collection in FHIRPath). Seconds and
their fraction are one precision. Timezones are normalised to UTC when both
values have one; when only one has one and both carry a time, the result is
uncertain too.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import ClassVar

__all__ = [
    "DAY",
    "HOUR",
    "MINUTE",
    "MONTH",
    "SECOND",
    "YEAR",
    "Date",
    "DateTime",
    "Temporal",
    "Time",
    "compare_temporal",
    "parse_date",
    "parse_datetime",
    "parse_time",
]

YEAR, MONTH, DAY, HOUR, MINUTE, SECOND = 1, 2, 3, 4, 5, 6
"""Precisions: the number of components present (seconds include their fraction)."""

_TIME = r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
_TZ = r"(Z|[+-]\d{2}:\d{2})"
_DATE_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_DATETIME_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T(?:" + _TIME + _TZ + r"?)?)?")
_TIME_RE = re.compile(_TIME)


class Temporal:
    """Common part of :class:`Date`, :class:`DateTime` and :class:`Time`.

    Attributes:
        parts: the components present, most significant first (year, month, day,
            hour, minute, second for dates; hour, minute, second for times).
        micro: microseconds of the second (0 when absent).
        frac: digits of the fraction of a second as written (0 when absent).
        tz: timezone offset in minutes, None when absent.
    """

    __slots__ = ("frac", "micro", "parts", "tz")
    kind: ClassVar[str] = ""

    def __init__(
        self, parts: tuple[int, ...], micro: int = 0, frac: int = 0, tz: int | None = None
    ) -> None:
        self.parts = parts
        self.micro = micro
        self.frac = frac
        self.tz = tz

    @property
    def precision(self) -> int:
        """The number of components present."""
        return len(self.parts)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Temporal)
        return (self.parts, self.micro, self.frac, self.tz) == (
            other.parts,
            other.micro,
            other.frac,
            other.tz,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.parts, self.micro, self.tz))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.iso()!r})"

    def __str__(self) -> str:
        return "@" + self.iso()

    def iso(self) -> str:
        """The ISO 8601 / FHIR text of the value (FHIRPath ``toString()``)."""
        raise NotImplementedError

    def _time_text(self, parts: tuple[int, ...]) -> str:
        text = ":".join(f"{p:02d}" for p in parts)
        if len(parts) == 3 and self.frac:
            digits = f"{self.micro:06d}"
            text += "." + (
                digits[: self.frac] if self.frac <= 6 else digits + "0" * (self.frac - 6)
            )
        return text

    def _tz_text(self) -> str:
        if self.tz is None:
            return ""
        if self.tz == 0:
            return "Z"
        sign = "+" if self.tz > 0 else "-"
        hours, minutes = divmod(abs(self.tz), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"


class Date(Temporal):
    """A FHIRPath Date (http://hl7.org/fhirpath/N1/#date): year, month, day."""

    __slots__ = ()
    kind = "Date"

    def iso(self) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
        return _date_text(self.parts)


class DateTime(Temporal):
    """A FHIRPath DateTime (http://hl7.org/fhirpath/N1/#datetime)."""

    __slots__ = ()
    kind = "DateTime"

    def __str__(self) -> str:
        text = self.iso()
        return "@" + (text + "T" if len(self.parts) <= DAY else text)

    def iso(self) -> str:
        """The FHIR ``dateTime`` text, e.g. ``2015-02-04T14:34:28.123+10:00``."""
        text = _date_text(self.parts[:3])
        if len(self.parts) > DAY:
            text += "T" + self._time_text(self.parts[3:]) + self._tz_text()
        return text


class Time(Temporal):
    """A FHIRPath Time (http://hl7.org/fhirpath/N1/#time): hour, minute, second."""

    __slots__ = ()
    kind = "Time"

    def __str__(self) -> str:
        return "@T" + self.iso()

    def iso(self) -> str:
        """``hh``, ``hh:mm`` or ``hh:mm:ss(.fff)``."""
        return self._time_text(self.parts)


def _date_text(parts: tuple[int, ...]) -> str:
    text = f"{parts[0]:04d}"
    for part in parts[1:]:
        text += f"-{part:02d}"
    return text


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    """The number of days of a month (Gregorian calendar)."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month - 1]


def _valid_date(parts: tuple[int, ...]) -> bool:
    if len(parts) >= 2 and not 1 <= parts[1] <= 12:
        return False
    return not (len(parts) >= 3 and not 1 <= parts[2] <= days_in_month(parts[0], parts[1]))


def _valid_time(parts: tuple[int, ...]) -> bool:
    limits = (23, 59, 59)
    return all(0 <= p <= limit for p, limit in zip(parts, limits, strict=False))


def _fraction(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 0
    return int((text + "000000")[:6]), len(text)


def _tz_minutes(text: str | None) -> int | None:
    if text is None:
        return None
    if text == "Z":
        return 0
    minutes = int(text[1:3]) * 60 + int(text[4:6])
    return -minutes if text[0] == "-" else minutes


def parse_date(text: str) -> Date | None:
    """Parse ``YYYY(-MM(-DD))``; None if it is not a valid date."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return Date((day.year, day.month, day.day))
    match = _DATE_RE.fullmatch(text)
    if match is None:
        return None
    parts = tuple(int(g) for g in match.groups() if g is not None)
    return Date(parts) if _valid_date(parts) else None


def _parse_instant(text: str) -> DateTime | None:
    """Fast path (C-level parsing) for the common ``YYYY-MM-DDThh:mm:ss[.fff]±hh:mm`` form."""
    size = len(text)
    if (
        size < 20
        or text[10] != "T"
        or text[4] != "-"
        or text[7] != "-"
        or text[13] != ":"
        or text[16] != ":"
    ):
        return None
    if text[-1] != "Z" and text[-3] != ":":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = moment.utcoffset()
    if offset is None:
        return None
    digits = 0
    if text[19] == ".":
        end = 20
        while end < size and text[end].isdigit():
            end += 1
        digits = end - 20
    parts = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return DateTime(parts, moment.microsecond, digits, int(offset.total_seconds()) // 60)


def parse_datetime(text: str) -> DateTime | None:
    """Parse a FHIR dateTime/instant or FHIRPath DateTime text (without ``@``)."""
    fast = _parse_instant(text)
    if fast is not None:
        return fast
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        return None
    groups = match.groups()
    parts = tuple(int(g) for g in groups[:6] if g is not None)
    if len(parts) > DAY and None in groups[1:3]:
        return None
    if not (_valid_date(parts[:3]) and _valid_time(parts[3:])):
        return None
    micro, frac = _fraction(groups[6])
    return DateTime(parts, micro, frac, _tz_minutes(groups[7]))


def parse_time(text: str) -> Time | None:
    """Parse ``hh(:mm(:ss(.fff)))``; None if it is not a valid time."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        return None
    groups = match.groups()
    parts = tuple(int(g) for g in groups[:3] if g is not None)
    if not _valid_time(parts):
        return None
    micro, frac = _fraction(groups[3])
    return Time(parts, micro, frac)


def to_datetime(value: Temporal) -> datetime:
    """A full :class:`datetime.datetime` with missing components at their minimum."""
    p = value.parts + (1, 1, 1, 0, 0, 0)[len(value.parts) :]
    return datetime(p[0], p[1], p[2], p[3], p[4], p[5], value.micro)


def from_datetime(moment: datetime, like: Temporal) -> tuple[int, ...]:
    """The components of ``moment`` truncated to the precision of ``like``."""
    full = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return full[: len(like.parts)]


def _utc_parts(value: Temporal) -> tuple[tuple[int, ...], int]:
    if value.tz is None or len(value.parts) <= DAY:
        return value.parts, value.micro
    try:
        moment = to_datetime(value) - timedelta(minutes=value.tz)
    except OverflowError:
        return value.parts, value.micro
    return from_datetime(moment, value), moment.microsecond


def compare_temporal(a: Temporal, b: Temporal) -> int | None:
    """-1, 0 or 1 comparing two dates/times; None when the result is uncertain.

    Dates and DateTimes compare with each other; Times only with Times.
    """
    if isinstance(a, Time) != isinstance(b, Time):
        raise TypeError("cannot compare a Time with a Date or DateTime")
    if isinstance(a, Time):
        pa, ma, pb, mb = a.parts, a.micro, b.parts, b.micro
    else:
        a_time, b_time = len(a.parts) > DAY, len(b.parts) > DAY
        if a_time and b_time and (a.tz is None) != (b.tz is None):
            return None
        if a.tz is not None and b.tz is not None:
            pa, ma = _utc_parts(a)
            pb, mb = _utc_parts(b)
        else:
            pa, ma, pb, mb = a.parts, a.micro, b.parts, b.micro
    seconds = 2 if isinstance(a, Time) else 5
    for index in range(min(len(pa), len(pb))):
        x, y = pa[index], pb[index]
        if index == seconds:
            x, y = x * 1_000_000 + ma, y * 1_000_000 + mb
        if x != y:
            return -1 if x < y else 1
    if len(pa) != len(pb):
        return None
    return 0


def add_calendar(value: Temporal, amount: int, unit: str) -> Temporal:
    """Add ``amount`` calendar ``unit`` (year, month, week, day, hour, minute, second,
    millisecond) to a date/time (http://hl7.org/fhirpath/N1/#datetime-arithmetic).

    The result keeps the precision and timezone of ``value``.
    """
    cls = type(value)
    if isinstance(value, Time):
        hour, minute, second = (*value.parts, 0, 0)[:3]
        base = datetime(2000, 1, 1, hour, minute, second, value.micro)
        moment = base + _delta(amount, unit)
        parts = (moment.hour, moment.minute, moment.second)[: len(value.parts)]
        return Time(parts, moment.microsecond if value.frac else 0, value.frac)
    if unit in ("year", "month"):
        months = amount * 12 if unit == "year" else amount
        year, month = value.parts[0], value.parts[1] if len(value.parts) > 1 else 1
        total = year * 12 + (month - 1) + months
        year, month = divmod(total, 12)
        month += 1
        if not 1 <= year <= 9999:
            raise OverflowError("date out of range")
        parts = (year, month, *value.parts[2:])[: len(value.parts)]
        if len(parts) >= 3:
            parts = (year, month, min(parts[2], days_in_month(year, month)), *parts[3:])
        return cls(parts, value.micro, value.frac, value.tz)
    moment = to_datetime(value) + _delta(amount, unit)
    micro = moment.microsecond if value.frac else 0
    return cls(from_datetime(moment, value), micro, value.frac, value.tz)


def _delta(amount: int, unit: str) -> timedelta:
    if unit == "week":
        return timedelta(weeks=amount)
    if unit == "day":
        return timedelta(days=amount)
    if unit == "hour":
        return timedelta(hours=amount)
    if unit == "minute":
        return timedelta(minutes=amount)
    if unit == "second":
        return timedelta(seconds=amount)
    if unit == "millisecond":
        return timedelta(milliseconds=amount)
    raise ValueError(f"not a calendar duration unit: {unit}")
