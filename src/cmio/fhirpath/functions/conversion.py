"""Conversion functions (http://hl7.org/fhirpath/N1/#conversion).

``toX()`` returns the converted value or empty; ``convertsToX()`` tells whether
``toX()`` would succeed. Both return empty for an empty input and fail for
several items.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.functions.base import FunctionSpec, spec
from cmio.fhirpath.quantity import CALENDAR_UNITS, Quantity, convert_value
from cmio.fhirpath.temporal import (
    Date,
    DateTime,
    Temporal,
    Time,
    parse_date,
    parse_datetime,
    parse_time,
)
from cmio.fhirpath.values import prim, quantity_of, single

__all__ = ["FUNCTIONS", "to_string"]

_INTEGER_RE = re.compile(r"[+-]?\d+")
_DECIMAL_RE = re.compile(r"[+-]?\d+(\.\d+)?")
_QUANTITY_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(?:'((?:[^'\\]|\\.)+)'|([a-z]+))?")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def to_boolean(value: Any) -> bool | None:
    """``toBoolean()`` of a System value."""
    if type(value) is bool:
        return value
    if type(value) is int:
        return {1: True, 0: False}.get(value)
    if type(value) is Decimal:
        return True if value == 1 else False if value == 0 else None
    if type(value) is str:
        text = value.lower()
        return True if text in _TRUE else False if text in _FALSE else None
    return None


def to_integer(value: Any) -> int | None:
    """``toInteger()`` of a System value."""
    if type(value) is int:
        return value
    if type(value) is bool:
        return int(value)
    if type(value) is str and _INTEGER_RE.fullmatch(value):
        return int(value)
    return None


def to_decimal(value: Any) -> Decimal | None:
    """``toDecimal()`` of a System value."""
    if type(value) is Decimal:
        return value
    if type(value) is int:
        return Decimal(value)
    if type(value) is bool:
        return Decimal(int(value))
    if type(value) is str and _DECIMAL_RE.fullmatch(value):
        return Decimal(value)
    return None


def to_quantity(value: Any, unit: str | None = None) -> Quantity | None:
    """``toQuantity()`` of a System value or FHIR Quantity."""
    kind = type(value)
    result: Quantity | None = None
    if kind is int or kind is Decimal:
        result = Quantity(Decimal(value), "1")
    elif kind is bool:
        result = Quantity(Decimal(int(value)), "1")
    elif kind is str:
        match = _QUANTITY_RE.fullmatch(value.strip())
        if match is None:
            return None
        number, quoted, word = match.groups()
        if word is not None and word not in CALENDAR_UNITS:
            return None
        result = Quantity(Decimal(number), quoted if quoted is not None else word or "1")
    else:
        result = quantity_of(value)
    if result is not None and unit is not None and unit != result.unit:
        converted = convert_value(result, unit)
        return None if converted is None else Quantity(converted, unit)
    return result


def to_string(value: Any) -> str | None:
    """``toString()`` of a System value (http://hl7.org/fhirpath/N1/#tostring-string)."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int or type(value) is Decimal:
        return str(value)
    if isinstance(value, Temporal):
        return value.iso()
    if type(value) is Quantity:
        return str(value)
    return None


def to_date(value: Any) -> Date | None:
    """``toDate()``."""
    if type(value) is Date:
        return value
    if type(value) is DateTime:
        return Date(value.parts[:3])
    return parse_date(value) if type(value) is str else None


def to_datetime(value: Any) -> DateTime | None:
    """``toDateTime()``."""
    if type(value) is DateTime:
        return value
    if type(value) is Date:
        return DateTime(value.parts)
    return parse_datetime(value) if type(value) is str else None


def to_time(value: Any) -> Time | None:
    """``toTime()``."""
    if type(value) is Time:
        return value
    return parse_time(value) if type(value) is str else None


def _pair(name: str, convert: Callable[..., Any], max_args: int = 0) -> dict[str, FunctionSpec]:
    def to(ctx: Context, items: list[Any], *args: list[Any]) -> list[Any]:
        item = single(items, f"input of to{name}()")
        if item is None:
            return []
        extra = [prim(a[0]) for a in args if a]
        value = item if name == "Quantity" and quantity_of(item) is not None else prim(item)
        result = convert(value, *extra)
        return [] if result is None else [result]

    def converts(ctx: Context, items: list[Any], *args: list[Any]) -> list[Any]:
        result = to(ctx, items, *args)
        return [bool(result)] if items else []

    return {f"to{name}": spec(to, 0, max_args), f"convertsTo{name}": spec(converts, 0, max_args)}


FUNCTIONS: dict[str, FunctionSpec] = {
    **_pair("Boolean", to_boolean),
    **_pair("Integer", to_integer),
    **_pair("Decimal", to_decimal),
    **_pair("Quantity", to_quantity, 1),
    **_pair("String", to_string),
    **_pair("Date", to_date),
    **_pair("DateTime", to_datetime),
    **_pair("Time", to_time),
}
