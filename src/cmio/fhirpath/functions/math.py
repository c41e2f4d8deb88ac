"""Math functions (http://hl7.org/fhirpath/N1/#math) and the precision utilities
``precision()``, ``lowBoundary()``, ``highBoundary()``, ``comparable()`` (FHIRPath 2.1)."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Decimal,
    InvalidOperation,
    localcontext,
)
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.functions.base import FunctionSpec, single_int, spec
from cmio.fhirpath.quantity import Quantity, unit_of
from cmio.fhirpath.temporal import DAY, Date, DateTime, Temporal, Time
from cmio.fhirpath.values import prim, quantity_of, single

__all__ = ["FUNCTIONS"]

_MAX_DECIMAL_PRECISION = 28
_TEMPORAL_PRECISIONS = {
    Date: (4, 6, 8),
    DateTime: (4, 6, 8, 10, 12, 14, 17),
    Time: (2, 4, 6, 9),
}


def _number(items: list[Any], name: str) -> Any:
    item = single(items, f"input of {name}()")
    value = prim(item)
    if value is None:
        return None
    if type(value) is not int and type(value) is not Decimal:
        raise FhirPathError(f"{name}() needs a number")
    return value


def _math(
    name: str, apply: Callable[..., Any], nargs: int = 0, max_args: int | None = None
) -> FunctionSpec:
    def impl(ctx: Context, items: list[Any], *args: list[Any]) -> list[Any]:
        value = _number(items, name)
        if value is None:
            return []
        extra = []
        for arg in args:
            number = _number(arg, name)
            if number is None:
                return []
            extra.append(number)
        try:
            with localcontext() as context:
                context.prec = 40
                result = apply(value, *extra)
        except (InvalidOperation, ZeroDivisionError, ValueError, OverflowError):
            return []
        if type(result) is Decimal:
            result = _rounded(result)
        return [] if result is None else [result]

    return spec(impl, nargs, max_args)


def _rounded(value: Decimal) -> Decimal:
    """Round a result computed at high precision to 28 significant digits."""
    with localcontext() as context:
        context.prec = _MAX_DECIMAL_PRECISION
        return +value


def _power(base: Any, exponent: Any) -> Any:
    if type(base) is int and type(exponent) is int and exponent >= 0:
        return base**exponent
    if base < 0 and exponent != int(exponent):
        return None
    return Decimal(base) ** Decimal(exponent)


def _round(value: Any, places: Any = 0) -> Decimal:
    if type(places) is not int or places < 0:
        raise ValueError("round() precision must be a non-negative Integer")
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _abs(ctx: Context, items: list[Any]) -> list[Any]:
    item = single(items, "input of abs()")
    if item is None:
        return []
    quantity = quantity_of(item)
    if quantity is not None:
        return [Quantity(abs(quantity.value), quantity.unit)]
    value = _number(items, "abs")
    return [] if value is None else [abs(value)]


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _decimal_boundary(value: Decimal, precision: int, high: bool) -> Decimal:
    if value < 0:
        return _decimal_boundary(-value, precision, not high).copy_negate()
    half = Decimal(5).scaleb(-(_scale(value) + 1))
    quantum = Decimal(1).scaleb(-precision)
    with localcontext() as context:
        context.prec = 60
        if high:
            return (value + half).quantize(quantum, rounding=ROUND_HALF_UP)
        return (value - half).quantize(quantum, rounding=ROUND_DOWN)


def _temporal_boundary(value: Temporal, precision: int, high: bool) -> Temporal | None:
    allowed = _TEMPORAL_PRECISIONS[type(value)]
    if precision not in allowed:
        return None
    count = allowed.index(precision) + 1
    if isinstance(value, Time):
        fill: tuple[int, ...] = (23, 59, 59) if high else (0, 0, 0)
        parts = (value.parts + fill[len(value.parts) :])[: min(count, 3)]
        if count < 4:
            return Time(parts)
        micro = value.micro if len(value.parts) == 3 and value.frac else (999000 if high else 0)
        return Time(parts, micro, 3)
    parts = value.parts
    year = parts[0]
    month = parts[1] if len(parts) > 1 else (12 if high else 1)
    day = parts[2] if len(parts) > 2 else (calendar.monthrange(year, month)[1] if high else 1)
    time = parts[3:] + ((23, 59, 59) if high else (0, 0, 0))[len(parts[3:]) :]
    full = (year, month, day, *time)
    exact = len(parts) == 6 and value.frac
    micro = value.micro if exact else (999000 if high else 0)
    if isinstance(value, Date):
        return Date(full[:count])
    if count <= DAY:
        return DateTime(full[:count])
    tz = value.tz if value.tz is not None else (-12 * 60 if high else 14 * 60)
    return DateTime(full[:count], micro if count == 7 else 0, 3 if count == 7 else 0, tz)


def _boundary(high: bool) -> Callable[..., list[Any]]:
    def impl(ctx: Context, items: list[Any], precision: list[Any] | None = None) -> list[Any]:
        item = single(items, "input of boundary function")
        if item is None:
            return []
        digits = single_int(precision, "boundary precision") if precision else None
        quantity = quantity_of(item)
        value = prim(item)
        if quantity is not None and type(value) is not Decimal:
            bound = _boundary_number(quantity.value, digits, high)
            return [] if bound is None else [Quantity(bound, quantity.unit)]
        if type(value) is int or type(value) is Decimal:
            bound = _boundary_number(Decimal(value), digits, high)
            return [] if bound is None else [bound]
        if isinstance(value, Temporal):
            default = _TEMPORAL_PRECISIONS[type(value)][-1]
            result = _temporal_boundary(value, default if digits is None else digits, high)
            return [] if result is None else [result]
        return []

    return impl


def _boundary_number(value: Decimal, digits: int | None, high: bool) -> Decimal | None:
    precision = 8 if digits is None else digits
    if precision < 0 or precision > _MAX_DECIMAL_PRECISION:
        return None
    return _decimal_boundary(value, precision, high)


def _precision(ctx: Context, items: list[Any]) -> list[Any]:
    value = prim(single(items, "input of precision()"))
    if value is None:
        return []
    if type(value) is Decimal:
        return [_scale(value)]
    if type(value) is int:
        return [0]
    if isinstance(value, Temporal):
        allowed = _TEMPORAL_PRECISIONS[type(value)]
        count = len(value.parts) + (1 if value.frac and len(value.parts) == len(allowed) - 1 else 0)
        return [allowed[count - 1]]
    return []


def _comparable(ctx: Context, items: list[Any], other: list[Any]) -> list[Any]:
    a, b = single(items, "input of comparable()"), single(other, "comparable() argument")
    if a is None or b is None:
        return []
    qa, qb = quantity_of(a), quantity_of(b)
    if qa is None or qb is None:
        raise FhirPathError("comparable() needs Quantities")
    ua, ub = unit_of(qa.unit), unit_of(qb.unit)
    return [ua is not None and ub is not None and ua.dims == ub.dims]


FUNCTIONS: dict[str, FunctionSpec] = {
    "abs": spec(_abs),
    "ceiling": _math(
        "ceiling", lambda v: int(Decimal(v).to_integral_value(rounding=ROUND_CEILING))
    ),
    "floor": _math("floor", lambda v: int(Decimal(v).to_integral_value(rounding=ROUND_FLOOR))),
    "truncate": _math("truncate", lambda v: int(Decimal(v).to_integral_value(rounding=ROUND_DOWN))),
    "exp": _math("exp", lambda v: Decimal(v).exp()),
    "ln": _math("ln", lambda v: Decimal(v).ln()),
    "log": _math("log", lambda v, base: Decimal(v).ln() / Decimal(base).ln(), 1),
    "sqrt": _math("sqrt", lambda v: Decimal(v).sqrt() if v >= 0 else None),
    "power": _math("power", _power, 1),
    "round": _math("round", _round, 0, 1),
    "precision": spec(_precision),
    "lowBoundary": spec(_boundary(False), 0, 1),
    "highBoundary": spec(_boundary(True), 0, 1),
    "comparable": spec(_comparable, 1),
}
