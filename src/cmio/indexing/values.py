"""Turning FHIRPath results into index rows, per search parameter type.

See https://hl7.org/fhir/R4/search.html#ptypes for which data types each
parameter type indexes. Results come from the engine's plain evaluation:
primitives as Python values (``str``, ``bool``, ``Decimal``, ``Date``/``DateTime``)
and complex types as JSON dicts, recognized by their shape.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cmio.fhirpath.temporal import Temporal
from cmio.fhirpath.ucum import parse_unit
from cmio.store._common import parse_date_range
from cmio.store.base import InvalidRequestError

__all__ = [
    "HIGHEST",
    "LOWEST",
    "Rows",
    "canonical_quantity",
    "date_range",
    "decimal_range",
    "normalize",
    "reference_parts",
]

Rows = dict[str, list[tuple[Any, ...]]]
LOWEST = "0001-01-01T00:00:00.000Z"
HIGHEST = "9999-12-31T23:59:59.999Z"
UCUM = "http://unitsofmeasure.org"
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?(?:Z|[+-]\d{2}:\d{2})")
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)
_ONE_MS = timedelta(milliseconds=1)
_MEMO_LIMIT = 50_000


def normalize(text: str) -> str:
    """Case- and accent-insensitive form of a string (https://hl7.org/fhir/R4/search.html#string)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def date_range(text: str) -> tuple[str, str] | None:
    """``[low, high)`` instants covering a date/dateTime/instant's precision, or None.

    The two shapes that make up nearly all stored values (a day, and a dateTime to
    the second or millisecond with a zone) take a fast path; everything else goes
    through :func:`cmio.store._common.parse_date_range`, which both paths agree with
    (https://hl7.org/fhir/R4/search.html#date).
    """
    try:
        if len(text) == 10 and _DAY.fullmatch(text):
            high = date.fromisoformat(text) + _ONE_DAY
            return f"{text}T00:00:00.000Z", f"{high.isoformat()}T00:00:00.000Z"
        m = _SECOND.fullmatch(text)
        if m is not None:
            low = datetime.fromisoformat(text).astimezone(UTC)
            end = low + (_ONE_MS if m.group(1) else _ONE_SECOND)
            return _instant(low), _instant(end)
    except (ValueError, OverflowError):
        pass  # out of range: the general parser decides
    try:
        return parse_date_range(text)
    except InvalidRequestError:
        return None


def _instant(moment: datetime) -> str:
    """A UTC datetime with whole milliseconds as ``YYYY-MM-DDThh:mm:ss.sssZ``."""
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def decimal_range(value: Decimal) -> tuple[float, float]:
    """``[low, high)`` implied by a decimal's precision (``100`` -> 99.5..100.5).

    See https://hl7.org/fhir/R4/search.html#number.
    """
    exponent = value.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(value - half), float(value + half)


def canonical_quantity(
    value: Decimal, code: str, units: dict[str, tuple[Decimal, str] | None] | None = None
) -> tuple[Decimal, str] | None:
    """``value code`` in UCUM base units and a key for its dimension, or None.

    ``units`` memoizes parsed unit codes for the caller (an indexer owns one; a few
    dozen distinct codes make up a whole data set).
    """
    unit: tuple[Decimal, str] | None
    if units is not None and code in units:
        unit = units[code]
    else:
        parsed = parse_unit(code)
        unit = (
            None if parsed is None else (parsed.factor, "ucum:" + ",".join(map(str, parsed.dims)))
        )
        if units is not None and len(units) < 10_000:
            units[code] = unit
    if unit is None:
        return None
    return value * unit[0], unit[1]


def reference_parts(ref: str) -> tuple[str | None, str | None, str | None]:
    """``(target type, target id, absolute url)`` of a literal reference.

    ``Patient/1`` -> ``("Patient", "1", None)``; ``http://x/fhir/Patient/1/_history/2``
    -> ``("Patient", "1", "http://x/fhir/Patient/1")``; a canonical or other URL
    keeps only the url (without ``|version``).
    """
    if ref.startswith("#") or not ref:
        return None, None, None
    absolute = "://" in ref or ref.startswith("urn:")
    if absolute:
        ref = ref.split("|", 1)[0]
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    url = "/".join(parts) if absolute else None
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalnum():
        return parts[-2], parts[-1], url
    return None, None, url


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def add_string(out: Rows, code: str, value: Any) -> None:
    """String rows: a string, or the parts of a HumanName/Address."""
    texts: list[str] = []
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        keys = _ADDRESS_PARTS if ("line" in value or "city" in value) else _NAME_PARTS
        for key in keys:
            part = value.get(key)
            for item in part if isinstance(part, list) else (part,):
                if isinstance(item, str):
                    texts.append(item)
    rows = out.setdefault("string_index", [])
    for text in texts:
        rows.append((code, normalize(text), text))


def add_token(out: Rows, code: str, value: Any) -> None:
    """Token rows (Coding, CodeableConcept, Identifier, ContactPoint, code, boolean...)."""
    tokens = out.setdefault("token_index", [])
    if isinstance(value, bool):
        tokens.append((code, None, "true" if value else "false"))
        return
    if isinstance(value, str):
        tokens.append((code, None, value))
        return
    if not isinstance(value, dict):
        if value is not None:
            tokens.append((code, None, str(value)))
        return
    texts: list[str] = []
    if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
        for coding in value.get("coding") or ():
            if isinstance(coding, dict):
                _coding(tokens, texts, code, coding)
        if isinstance(value.get("text"), str):
            texts.append(value["text"])
    elif "value" in value and isinstance(value.get("value"), str):
        system = value.get("system")
        if isinstance(system, str) and system in _CONTACT_SYSTEMS:
            tokens.append((code, None, value["value"]))
        else:
            tokens.append((code, system if isinstance(system, str) else None, value["value"]))
            id_type = value.get("type")
            if isinstance(id_type, dict):  # for :of-type
                for coding in id_type.get("coding") or ():
                    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                        tokens.append(
                            (
                                code + ":of-type",
                                coding.get("system"),
                                f"{coding['code']}|{value['value']}",
                            )
                        )
            if isinstance(id_type, dict) and isinstance(id_type.get("text"), str):
                texts.append(id_type["text"])
    elif "code" in value or "system" in value:
        _coding(tokens, texts, code, value)
    if texts:
        strings = out.setdefault("string_index", [])
        for text in texts:
            strings.append((code + ":text", normalize(text), text))


def _coding(
    tokens: list[tuple[Any, ...]], texts: list[str], code: str, coding: dict[str, Any]
) -> None:
    system = coding.get("system")
    value = coding.get("code")
    if isinstance(value, str):
        tokens.append((code, system if isinstance(system, str) else None, value))
    elif isinstance(system, str):
        tokens.append((code, system, ""))
    if isinstance(coding.get("display"), str):
        texts.append(coding["display"])


def add_reference(
    out: Rows, code: str, value: Any, targets: tuple[str, ...], strict: bool = False
) -> None:
    """Reference rows (Reference, canonical, uri) plus ``:identifier`` tokens.

    With ``strict`` only references to one of ``targets`` are kept (the
    expression's ``where(resolve() is T)``).
    """
    ref: Any = value
    if isinstance(value, dict):
        ident = value.get("identifier")
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            system = ident.get("system")
            out.setdefault("token_index", []).append(
                (code + ":identifier", system if isinstance(system, str) else None, ident["value"])
            )
        ref = value.get("reference")
    if not isinstance(ref, str):
        return
    rtype, rid, url = reference_parts(ref)
    if rid is None and url is None:
        return
    if rtype is None and url is not None and len(targets) == 1:
        rtype = targets[0]
    if strict and rtype not in targets:
        return
    out.setdefault("reference_index", []).append((code, rtype, rid, url))


def add_date(
    out: Rows, code: str, value: Any, ranges: dict[str, tuple[str, str] | None] | None = None
) -> None:
    """Date rows: date/dateTime/instant, Period, Timing (events).

    ``ranges``: a memo of :func:`date_range` results the caller keeps (bounded here).
    """
    rows = out.setdefault("date_index", [])
    if isinstance(value, Temporal | str):
        found = _span(value.iso() if isinstance(value, Temporal) else value, ranges)
        if found:
            rows.append((code, *found))
        return
    if not isinstance(value, dict):
        return
    if "start" in value or "end" in value:
        start = _span(value["start"], ranges) if isinstance(value.get("start"), str) else None
        end = _span(value["end"], ranges) if isinstance(value.get("end"), str) else None
        if start or end:
            rows.append((code, start[0] if start else LOWEST, end[1] if end else HIGHEST))
        return
    events = [_span(e, ranges) for e in value.get("event") or () if isinstance(e, str)]
    spans = [e for e in events if e]
    bounds = (value.get("repeat") or {}).get("boundsPeriod")
    if isinstance(bounds, dict):
        add_date(out, code, bounds, ranges)
    if spans:
        rows.append((code, min(s[0] for s in spans), max(s[1] for s in spans)))


def _span(text: str, ranges: dict[str, tuple[str, str] | None] | None) -> tuple[str, str] | None:
    """:func:`date_range`, through the caller's memo when it has one."""
    if ranges is None:
        return date_range(text)
    if text in ranges:
        return ranges[text]
    found = date_range(text)
    if len(ranges) >= _MEMO_LIMIT:
        ranges.clear()
    ranges[text] = found
    return found


def add_number(out: Rows, code: str, value: Any) -> None:
    """Number rows: ``[low, high)`` of the value's precision."""
    number = _decimal(value)
    if number is not None:
        out.setdefault("number_index", []).append((code, float(number), float(number)))


def add_quantity(
    out: Rows, code: str, value: Any, units: dict[str, tuple[Decimal, str] | None] | None = None
) -> None:
    """Quantity rows (Quantity, Money, Range low/high, SampledData origin).

    ``units``: see :func:`canonical_quantity`.
    """
    if not isinstance(value, dict):
        add_number_as_quantity(out, code, value)
        return
    if "low" in value or "high" in value:
        for part in ("low", "high"):
            if isinstance(value.get(part), dict):
                add_quantity(out, code, value[part], units)
        return
    if "origin" in value and isinstance(value["origin"], dict):
        add_quantity(out, code, value["origin"], units)
        return
    number = _decimal(value.get("value"))
    if number is None:
        return
    system = value.get("system") if isinstance(value.get("system"), str) else None
    unit_code = value.get("code") if isinstance(value.get("code"), str) else None
    if unit_code is None and isinstance(value.get("currency"), str):
        system, unit_code = "urn:iso:std:iso:4217", value["currency"]
    if unit_code is None and isinstance(value.get("unit"), str):
        unit_code = value["unit"]
    low = high = float(number)
    canon: tuple[Any, Any, Any] = (None, None, None)
    if unit_code is not None and system in (UCUM, None):
        found = canonical_quantity(number, unit_code, units)
        if found is not None:
            canon = (float(found[0]), float(found[0]), found[1])
    out.setdefault("quantity_index", []).append((code, low, high, system, unit_code, *canon))


def add_number_as_quantity(out: Rows, code: str, value: Any) -> None:
    """A bare number under a quantity parameter (no unit)."""
    number = _decimal(value)
    if number is not None:
        row = (code, float(number), float(number), None, None, None, None, None)
        out.setdefault("quantity_index", []).append(row)


def add_uri(out: Rows, code: str, value: Any) -> None:
    """URI rows."""
    if isinstance(value, str):
        out.setdefault("uri_index", []).append((code, value))
