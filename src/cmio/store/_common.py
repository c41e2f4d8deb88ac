"""Helpers shared by the SQL backends: ids, instants, stamping ``meta``, date ranges."""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from cmio.store.base import InvalidRequestError

__all__ = [
    "Clock",
    "check_id",
    "format_instant",
    "new_id",
    "parse_date_range",
    "resource_type_of",
    "stamp",
]

Json = dict[str, Any]

_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE_RE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# Upper bound used when a range end does not fit in a datetime (year 9999).
_END_OF_TIME = "9999-12-31T23:59:59.999Z~"


def check_id(id: str) -> str:
    """Validate a logical id (https://hl7.org/fhir/R4/datatypes.html#id).

    Raises:
        InvalidRequestError: ``id`` is not 1-64 characters of ``[A-Za-z0-9-.]``.
    """
    if not isinstance(id, str) or _ID_RE.fullmatch(id) is None:
        raise InvalidRequestError(f"invalid resource id {id!r}")
    return id


def new_id() -> str:
    """A fresh logical id: a time-ordered UUID (version 7, RFC 9562 section 5.7).

    The first 48 bits are the Unix time in milliseconds and 74 bits are random, so ids
    made close in time sort close together: a create's rows land next to the previous
    creates' in every B-tree keyed by id (``resource``, ``resource_history``, the index
    tables' owner indexes) instead of on a random page each, and a group commit writes
    fewer pages. The creation time an id shows is the first version's ``meta.lastUpdated``
    anyway; de-identified exports replace ids (:mod:`cmio.security.deid`).
    """
    random = secrets.randbits(74)
    value = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (random >> 62) << 64
    return str(uuid.UUID(int=value | 0b10 << 62 | random & (1 << 62) - 1))


def resource_type_of(resource: Json) -> str:
    """``resource['resourceType']``, validated.

    Raises:
        InvalidRequestError: the resource has no plausible ``resourceType``.
    """
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or _TYPE_RE.fullmatch(rtype) is None:
        raise InvalidRequestError(f"invalid resourceType {rtype!r}")
    return rtype


def format_instant(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDThh:mm:ss.sssZ`` (UTC), rounding up to the ms.

    Rounding up keeps comparisons exact against the millisecond-precision
    ``lastUpdated`` strings: ``lu >= t`` equals ``lu >= ceil_ms(t)``.
    """
    moment = moment.astimezone(UTC)
    rest = moment.microsecond % 1000
    if rest:
        moment += timedelta(microseconds=1000 - rest)
    return (  # %Y does not pad years before 1000 on every platform
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


class Clock:
    """Hands out ``lastUpdated`` instants that never go backwards for one repository."""

    __slots__ = ("_last", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = ""

    def now(self, floor: str | None = None) -> str:
        """The current UTC instant, at least the last one handed out and at least ``floor``."""
        moment = format_instant(datetime.now(UTC))
        with self._lock:
            if moment < self._last:
                moment = self._last
            self._last = moment
        if floor is not None and moment < floor:
            moment = floor
        return moment


def stamp(resource: Json, id: str, version: int, last_updated: str) -> bytes:
    """Set ``id``, ``meta.versionId`` and ``meta.lastUpdated`` in place and serialize.

    See https://hl7.org/fhir/R4/resource.html#Meta. The JSON starts with
    ``resourceType, id, meta``, then the other elements in their given order.
    """
    meta = resource.get("meta")
    if isinstance(meta, dict):
        meta["versionId"] = str(version)
        meta["lastUpdated"] = last_updated
    else:
        meta = resource["meta"] = {"versionId": str(version), "lastUpdated": last_updated}
    resource["id"] = id
    ordered = {"resourceType": resource.get("resourceType"), "id": id, "meta": meta}
    ordered.update(resource)
    return orjson.dumps(ordered)


def parse_date_range(value: str) -> tuple[str, str]:
    """Turn a FHIR date/dateTime/instant search value into a half-open instant range.

    The range covers the value's precision (https://hl7.org/fhir/R4/search.html#date):
    ``2026`` is the whole year, ``2026-01-01`` the whole (UTC) day, a time without
    seconds the whole minute, and so on. Values without a zone are taken as UTC.

    Returns:
        ``(low, high)`` as ``lastUpdated``-format strings; a value matches when
        ``low <= value < high``.

    Raises:
        InvalidRequestError: ``value`` is not a valid date, dateTime or instant.
    """
    m = _DATE_RE.fullmatch(value.strip())
    if m is None:
        raise InvalidRequestError(f"invalid date/time search value {value!r}")
    g = m.groupdict()
    try:
        year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
        hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
        frac = g["f"] or ""
        micro = int((frac + "000000")[:6]) if frac else 0
        zone: timezone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
            zone = timezone(sign * timedelta(hours=hh, minutes=mm))
        low = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError as exc:
        raise InvalidRequestError(f"invalid date/time search value {value!r}: {exc}") from None
    high: datetime | None
    try:
        if g["m"] is None:
            high = low.replace(year=year + 1)
        elif g["d"] is None:
            high = (
                low.replace(year=year + 1, month=1) if month == 12 else low.replace(month=month + 1)
            )
        elif g["H"] is None:
            high = low + timedelta(days=1)
        elif g["S"] is None:
            high = low + timedelta(minutes=1)
        elif not frac:
            high = low + timedelta(seconds=1)
        else:
            high = low + timedelta(microseconds=max(1, 10 ** (6 - min(len(frac), 6))))
    except (ValueError, OverflowError):
        high = None
    try:
        start = format_instant(low)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before the first UTC instant
        start = "0001-01-01T00:00:00.000Z"
    try:
        end = format_instant(high) if high is not None else _END_OF_TIME
    except OverflowError:  # before the first or after the last UTC instant
        end = _END_OF_TIME if high is not None and high.year > 1 else "0001-01-01T00:00:00.000Z"
    return start, end
