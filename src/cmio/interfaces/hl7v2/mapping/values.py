"""HL7 v2 date/time values (DTM, TS, DT) to FHIR dateTime, date and instant.

IG datatype map DTM[dateTime] (https://build.fhir.org/ig/HL7/v2-to-fhir/ ): the v2 format
``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` becomes the FHIR form with the precision
kept (https://hl7.org/fhir/R4/datatypes.html#dateTime ); a time sent without an offset gets the
channel's time zone (FHIR requires one when a time is given).
"""

from __future__ import annotations

import datetime as _dt
import re

from cmio.interfaces.hl7v2.mapping.context import MapContext

__all__ = ["date", "datetime", "instant"]

_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)


def _dtm_parts(text: str) -> re.Match[str] | None:
    return _DTM.match(text.strip())


def datetime(ctx: MapContext, text: str, path: str) -> str | None:
    """DTM/TS -> FHIR dateTime (IG map DTM[dateTime]): precision kept, time zone added.

    A time without an offset gets the channel's ``timezone``; an invalid value is an issue
    and is left out.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    if not text:
        return None
    known = ctx.datetimes.get(text)
    if known is not None:  # the same valid value met before in this message
        return known
    m = _dtm_parts(text)
    if m is None:
        ctx.issue(path, f"not a valid DTM: {text!r}")
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    if not _in_range(year, month, day, hour, minute, second, offset):
        ctx.issue(path, f"not a valid date/time: {text!r}")
        return None
    out = year
    if month:
        out += f"-{month}"
        if day:
            out += f"-{day}"
    if hour is not None:
        out += f"T{hour}:{minute or '00'}:{second or '00'}"
        if frac:
            out += f".{frac}"
        if offset:
            out += f"{offset[:3]}:{offset[3:]}" if offset not in ("+0000", "-0000") else "Z"
        else:
            out += ctx.options.timezone
    ctx.datetimes[text] = out
    return out


def _in_range(
    year: str,
    month: str | None,
    day: str | None,
    hour: str | None,
    minute: str | None,
    second: str | None,
    offset: str | None,
) -> bool:
    if year == "0000" or (month and not 1 <= int(month) <= 12):
        return False
    if day:
        try:
            _dt.date(int(year), int(month or 1), int(day))
        except ValueError:
            return False
    if (hour and int(hour) > 23) or (minute and int(minute) > 59) or (second and int(second) > 59):
        return False
    return not offset or (int(offset[1:3]) <= 14 and int(offset[3:]) <= 59)


def date(ctx: MapContext, text: str, path: str) -> str | None:
    """DT/DTM -> FHIR date (the date part, precision kept).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    value = datetime(ctx, text, path)
    return value[:10] if value else None


def instant(ctx: MapContext, text: str, path: str) -> str | None:
    """DTM -> FHIR instant (needs seconds and a zone; a date-only value is left out).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    value = datetime(ctx, text, path)
    if value is None or "T" not in value:
        if value is not None:
            ctx.issue(path, f"{text!r} has no time, not an instant")
        return None
    return value
