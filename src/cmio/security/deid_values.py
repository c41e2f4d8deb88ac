"""Value-level rules of Safe Harbor de-identification: dates, ZIP codes, ages.

HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)
(https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-E/section-164.514):
(B) geographic subdivisions smaller than a state are removed, except the first three
digits of a ZIP code when the area they cover holds more than 20,000 people (else
``000``); (C) all elements of dates except the year are removed (here: shifted by a
per-patient offset, which keeps intervals), and ages over 89 and the dates that
reveal them are aggregated into one category of 90 or older. The restricted ZIP3
list is the one published in HHS's de-identification guidance (2000 Census data,
https://www.hhs.gov/hipaa/for-professionals/privacy/special-topics/de-identification/).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

__all__ = [
    "AGE_CAP",
    "RESTRICTED_ZIP3",
    "age_on",
    "parse_day",
    "shift_date",
    "zip3",
]

AGE_CAP = 90
"""Ages from 90 up are reported as one category, "90 or older"."""

RESTRICTED_ZIP3: frozenset[str] = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)
"""The 17 three-digit ZIP codes covering 20,000 people or fewer (HHS guidance, 2000 Census)."""

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(.*)$", re.DOTALL)


def parse_day(value: str) -> date | None:
    """The calendar day at the start of a FHIR date/dateTime/instant, None if it has no day."""
    m = _DATE.match(value)
    if m is None or m.group(3) is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def shift_date(value: str, days: int) -> str | None:
    """A FHIR ``date``/``dateTime``/``instant`` moved by ``days``; the time of day is kept.

    ``YYYY-MM-DD[Thh:mm:ss...]`` moves exactly (intervals are preserved); ``YYYY-MM``
    moves its middle day and keeps month precision; ``YYYY`` is kept (Safe Harbor
    allows the year). See https://hl7.org/fhir/R4/datatypes.html#dateTime.

    Args:
        value: the primitive's value.
        days: the offset in days.

    Returns:
        The shifted value, or None when ``value`` is not a date (it is then dropped).
    """
    m = _DATE.match(value)
    if m is None:
        return None
    year, month, day, rest = m.group(1), m.group(2), m.group(3), m.group(4)
    try:
        if month is None:
            return year if not rest else None
        if day is None:
            if rest:
                return None
            moved = date(int(year), int(month), 15) + timedelta(days=days)
            return f"{moved.year:04d}-{moved.month:02d}"
        moved = date(int(year), int(month), int(day)) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved.year:04d}-{moved.month:02d}-{moved.day:02d}{rest}"


def age_on(birth: str, when: date) -> int | None:
    """Age in whole years on ``when`` of someone born on ``birth`` (year-only births: Jan 1)."""
    m = _DATE.match(birth)
    if m is None:
        return None
    year = int(m.group(1))
    month = int(m.group(2) or 1)
    day = int(m.group(3) or 1)
    return when.year - year - ((when.month, when.day) < (month, day))


def zip3(postal_code: str) -> str | None:
    """The Safe Harbor form of a US ZIP code: its first three digits, ``000`` when restricted.

    Args:
        postal_code: ``12345`` or ``12345-6789`` (other formats are not US ZIP codes).

    Returns:
        The three digits (or ``000``), or None when the code is not a US ZIP code
        (the caller then drops it).
    """
    code = postal_code.strip()
    if not re.fullmatch(r"\d{5}(?:-?\d{4})?", code):
        return None
    head = code[:3]
    return "000" if head in RESTRICTED_ZIP3 else head
