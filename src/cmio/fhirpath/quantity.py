"""The FHIRPath Quantity (http://hl7.org/fhirpath/N1/#quantity).

A value (exact :class:`decimal.Decimal`) and a unit: a UCUM code, or one of the
calendar duration keywords (``year``, ``month``, ``week``, ``day``, ``hour``,
``minute``, ``second``, ``millisecond`` and their plurals). Calendar durations of
a week and below equal their UCUM counterparts (``1 week = 1 'wk'``); years and
months do not compare with ``'a'`` and ``'mo'``
(http://hl7.org/fhirpath/N1/#time-valued-quantities).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from cmio.fhirpath.ucum import Unit, parse_unit

__all__ = [
    "CALENDAR_UNITS",
    "Quantity",
    "calendar_unit",
    "compare_quantities",
    "convert_value",
    "decimal_equivalent",
    "unit_of",
]

CALENDAR_UNITS: dict[str, str] = {
    **{word: word for word in ("year", "month", "week", "day", "hour", "minute", "second")},
    **{word + "s": word for word in ("year", "month", "week", "day", "hour", "minute", "second")},
    "millisecond": "millisecond",
    "milliseconds": "millisecond",
}
"""Calendar duration keywords (singular and plural) -> the singular keyword."""

_UCUM_OF_CALENDAR = {
    "week": "wk",
    "day": "d",
    "hour": "h",
    "minute": "min",
    "second": "s",
    "millisecond": "ms",
}
_CALENDAR_OF_UCUM = {ucum: word for word, ucum in _UCUM_OF_CALENDAR.items()}
_MONTHS = Unit(Decimal(1), (0,) * 12 + (1,))
_YEARS = Unit(Decimal(12), (0,) * 12 + (1,))


class Quantity:
    """A FHIRPath System.Quantity: ``str()`` gives the literal form (``4 'mg'``, ``1 week``)."""

    __slots__ = ("unit", "value")

    def __init__(self, value: Decimal, unit: str = "1") -> None:
        self.value = value
        self.unit = unit

    def __repr__(self) -> str:
        return f"Quantity({self.value!r}, {self.unit!r})"

    def __str__(self) -> str:
        if self.unit in CALENDAR_UNITS:
            return f"{self.value} {self.unit}"
        return f"{self.value} '{self.unit}'"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value and self.unit == other.unit

    def __hash__(self) -> int:
        return hash((self.value, self.unit))


def calendar_unit(unit: str) -> str | None:
    """The calendar keyword a unit stands for in date arithmetic, if any.

    Keywords and the UCUM definite durations of a week and below qualify; ``'a'``
    and ``'mo'`` do not (http://hl7.org/fhirpath/N1/#datetime-arithmetic).
    """
    return CALENDAR_UNITS.get(unit) or _CALENDAR_OF_UCUM.get(unit)


def unit_of(unit: str) -> Unit | None:
    """The factor and dimensions of a quantity unit (UCUM code or calendar keyword)."""
    word = CALENDAR_UNITS.get(unit)
    if word == "year":
        return _YEARS
    if word == "month":
        return _MONTHS
    if word is not None:
        unit = _UCUM_OF_CALENDAR[word]
    return parse_unit(unit)


def convert_value(quantity: Quantity, unit: str) -> Decimal | None:
    """The value of ``quantity`` expressed in ``unit``; None if not convertible."""
    if _same_unit(quantity.unit, unit):
        return quantity.value
    source, target = unit_of(quantity.unit), unit_of(unit)
    if source is None or target is None or source.dims != target.dims:
        return None
    if source.factor == target.factor:
        return quantity.value
    try:
        return _exact(quantity.value * source.factor / target.factor)
    except InvalidOperation:
        return None


def _same_unit(a: str, b: str) -> bool:
    return a == b or (CALENDAR_UNITS.get(a, a) == CALENDAR_UNITS.get(b, b))


def _exact(value: Decimal) -> Decimal:
    """Drop the trailing zeros a factor introduces, but never below the value's own scale."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normal.quantize(Decimal(1))
    return normal


def compare_quantities(a: Quantity, b: Quantity) -> int | None:
    """-1, 0 or 1; None if the units are not comparable."""
    value = convert_value(b, a.unit)
    if value is None:
        return None
    return (a.value > value) - (a.value < value)


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def decimal_equivalent(a: Decimal, b: Decimal) -> bool:
    """Decimal equivalence: equal when rounded to the precision of the less precise one
    (http://hl7.org/fhirpath/N1/#equivalence)."""
    places = min(_scale(a), _scale(b))
    quantum = Decimal(1).scaleb(-places)
    try:
        return a.quantize(quantum) == b.quantize(quantum)
    except InvalidOperation:
        return a == b
