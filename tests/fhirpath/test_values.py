"""Typed values: date/time parsing and comparison, UCUM units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cmio.fhirpath.quantity import Quantity, compare_quantities, convert_value
from cmio.fhirpath.temporal import compare_temporal, parse_date, parse_datetime, parse_time
from cmio.fhirpath.ucum import parse_unit


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("2015", "@2015T"),
        ("2015-02-04", "@2015-02-04T"),
        ("2015-02-04T14:34:28.123+10:00", "@2015-02-04T14:34:28.123+10:00"),
        ("2015-02-04T14:34:28Z", "@2015-02-04T14:34:28Z"),
        ("2015-02-04T14:34:28", "@2015-02-04T14:34:28"),
        ("2016-02-29T00:00:00-05:30", "@2016-02-29T00:00:00-05:30"),
    ],
)
def test_datetime_literals(text: str, literal: str) -> None:
    value = parse_datetime(text)
    assert value is not None and str(value) == literal


@pytest.mark.parametrize(
    "text",
    [
        "2015-02-30T00:00:00Z",
        "2015-02-04T14:34:28+1000",
        "2015-02-04T25:00:00Z",
        "2015-13",
        "15-01-01",
    ],
)
def test_invalid_datetimes(text: str) -> None:
    assert parse_datetime(text) is None


def test_dates_and_times() -> None:
    assert str(parse_date("2015-02-04")) == "@2015-02-04"
    assert parse_date("2015-0204") is None and parse_date("2015-02-29") is None
    assert str(parse_time("14:34:28.5")) == "@T14:34:28.5"
    assert parse_time("24:00") is None


def test_temporal_comparison_rules() -> None:
    def cmp(a: str, b: str) -> int | None:
        x, y = parse_datetime(a), parse_datetime(b)
        assert x is not None and y is not None
        return compare_temporal(x, y)

    assert cmp("2017-11-05T01:30:00-04:00", "2017-11-05T01:15:00-05:00") == -1
    assert cmp("2012-04-15T15:00:00+02:00", "2012-04-15T16:00:00+03:00") == 0
    assert cmp("2012-04-15", "2012-04-15T10:00:00") is None
    assert cmp("2012-04-14", "2012-04-15T10:00:00") == -1
    assert cmp("2012-04-15T15:00:00Z", "2012-04-15T10:00:00") is None


def test_ucum_conversions() -> None:
    assert convert_value(Quantity(Decimal("4040"), "mg"), "g") == Decimal("4.04")
    assert convert_value(Quantity(Decimal("1"), "[lb_av]"), "kg") == Decimal("0.45359237")
    assert convert_value(Quantity(Decimal("120"), "mm[Hg]"), "kPa") == Decimal("15.99864")
    assert convert_value(Quantity(Decimal("1"), "cm"), "s") is None
    assert compare_quantities(Quantity(Decimal(7), "days"), Quantity(Decimal(1), "wk")) == 0
    assert compare_quantities(Quantity(Decimal(1), "month"), Quantity(Decimal(1), "mo")) is None
    assert compare_quantities(Quantity(Decimal(1), "year"), Quantity(Decimal(12), "months")) == 0
    unit = parse_unit("10*3/uL")
    assert unit is not None and unit.factor == Decimal("1E+12")
    assert parse_unit("[s]") is None and parse_unit("m//s") is None
