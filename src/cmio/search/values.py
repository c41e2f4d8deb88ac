"""Parsing of search values: prefixes, dates, numbers, quantities, tokens.

See https://hl7.org/fhir/R4/search.html#prefix and the sections per type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from cmio.store._common import format_instant, parse_date_range
from cmio.store._query import split_token
from cmio.store.base import InvalidRequestError

__all__ = [
    "PREFIXES",
    "QuantityValue",
    "approximate",
    "increment",
    "parse_date",
    "parse_number",
    "parse_quantity",
    "split_prefix",
    "split_token",
]

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})


class QuantityValue(NamedTuple):
    """A quantity search value ``[prefix]number|system|code``."""

    prefix: str
    number: Decimal
    system: str | None
    code: str | None


def split_prefix(value: str) -> tuple[str, str]:
    """``ge2020`` -> ``("ge", "2020")``; no prefix -> ``("eq", value)``."""
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def parse_date(value: str) -> tuple[str, str, str]:
    """``(prefix, low, high)`` of a date search value (half-open instant range).

    Raises:
        InvalidRequestError: not a valid date, dateTime or instant.
    """
    prefix, text = split_prefix(value)
    low, high = parse_date_range(text)
    return prefix, low, high


def parse_number(text: str) -> Decimal:
    """A decimal search value.

    Raises:
        InvalidRequestError: not a number.
    """
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidRequestError(f"invalid number {text!r}") from None
    if not number.is_finite():
        raise InvalidRequestError(f"invalid number {text!r}")
    return number


def parse_quantity(value: str) -> QuantityValue:
    """Parse ``[prefix]number[|system|code]`` (https://hl7.org/fhir/R4/search.html#quantity).

    Raises:
        InvalidRequestError: malformed value.
    """
    prefix, text = split_prefix(value)
    parts = text.split("|")
    if len(parts) not in (1, 3):
        raise InvalidRequestError(f"invalid quantity {value!r}")
    number = parse_number(parts[0])
    system = parts[1] or None if len(parts) == 3 else None
    code = parts[2] or None if len(parts) == 3 else None
    return QuantityValue(prefix, number, system, code)


def approximate(low: str, high: str) -> tuple[str, str]:
    """``ap`` on dates: the range widened by 10% of its distance from now on each side."""

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    lo, hi = parse(low), parse(high)
    slack = abs(datetime.now(UTC) - lo) / 10
    try:
        return format_instant(lo - slack), format_instant(hi + slack)
    except (OverflowError, ValueError):
        return low, high


def increment(text: str) -> str:
    """The smallest string greater than every string starting with ``text``.

    Used to turn a prefix match into an index-friendly range (``ab`` -> ``ac``).
    """
    return text[:-1] + chr(ord(text[-1]) + 1) if text else "\U0010ffff"
