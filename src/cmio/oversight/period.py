"""Reporting periods for the web app and reports: a year, a quarter, a month or a range.

The text forms are ``2026``, ``2026-Q3``, ``2026-10`` and ``2026-01/2026-06``; every
period is whole days, both ends included, like a FHIR ``Period`` of dates
(https://hl7.org/fhir/R4/datatypes.html#Period).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

__all__ = ["ReportingPeriod"]

_YEAR = re.compile(r"(\d{4})$")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"(\d{4})-(\d{2})$")


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True, slots=True)
class ReportingPeriod:
    """A period of whole days with the label people read.

    Attributes:
        start: the first day. end: the last day. label: ``2026``, ``2026-Q3``, ``2026-10``
            or ``START/END``.
    """

    start: date
    end: date
    label: str

    @classmethod
    def parse(cls, text: str) -> ReportingPeriod:
        """Read ``YYYY``, ``YYYY-Qn``, ``YYYY-MM`` or ``START/END`` (months or days).

        Raises:
            ValueError: any other text, a bad month, or an end before the start.
        """
        text = text.strip()
        if m := _YEAR.match(text):
            year = int(m[1])
            return cls(date(year, 1, 1), date(year, 12, 31), text)
        if m := _QUARTER.match(text):
            year, quarter = int(m[1]), int(m[2])
            first = 3 * quarter - 2
            return cls(date(year, first, 1), _month_end(year, first + 2), f"{year}-Q{quarter}")
        if m := _MONTH.match(text):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError(f"period {text!r}: bad month")
            return cls(date(year, month, 1), _month_end(year, month), text)
        if "/" in text:
            from cmio.measures.ehr_use.engine import Period

            span = Period.parse(text)
            return cls(span.start, span.end, text)
        raise ValueError(f"period {text!r}: expected YYYY, YYYY-Qn, YYYY-MM or START/END")

    @classmethod
    def year_of(cls, day: date) -> ReportingPeriod:
        """The calendar year containing ``day``."""
        return cls.parse(str(day.year))

    @property
    def span(self) -> str:
        """``YYYY-MM-DD/YYYY-MM-DD``: the form the measure and EHR-use engines read."""
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    @property
    def days(self) -> int:
        """The number of days in the period."""
        return (self.end - self.start).days + 1

    def previous(self) -> ReportingPeriod:
        """The period of the same kind just before this one (for trends and deltas)."""
        if _YEAR.match(self.label):
            return self.parse(str(self.start.year - 1))
        if m := _QUARTER.match(self.label):
            year, quarter = int(m[1]), int(m[2])
            return self.parse(f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}")
        if _MONTH.match(self.label):
            year, month = self.start.year, self.start.month
            return self.parse(f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}")
        from datetime import timedelta

        end = self.start - timedelta(days=1)
        start = end - timedelta(days=self.days - 1)
        return ReportingPeriod(start, end, f"{start.isoformat()}/{end.isoformat()}")

    def months(self) -> list[str]:
        """Every month the period touches, as ``YYYY-MM``, in order."""
        out: list[str] = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            out.append(f"{year}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out
