"""UCUM validation and canonical conversion against the official essence tables."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from cmio.terminology.ucum import Ucum, UcumError, essence_path


@pytest.fixture(scope="module")
def ucum() -> Ucum:
    return Ucum()


def test_reads_the_official_essence(ucum: Ucum) -> None:
    assert essence_path().name == "ucum-essence.xml"
    assert ucum.version is not None


def test_ucum_examples_table_is_valid(ucum: Ucum) -> None:
    """The 848 example units distributed with UCUM (LOINC's common units) all parse,
    except 'Torr', which the table itself notes is not a UCUM unit."""
    examples = essence_path().with_name("ucum_examples.tsv")
    with examples.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    invalid = [row[1] for row in rows if not ucum.is_valid(row[1])]
    assert len(rows) > 800
    assert invalid == ["Torr"]


@pytest.mark.parametrize(
    ("value", "unit", "expected_value", "expected_unit"),
    [
        ("5", "mg/dL", "50", "m-3.g"),
        ("2", "kg/m2", "2000", "m-2.g"),
        ("3", "%", "0.03", "1"),
        ("1", "10*3/uL", "1E+12", "m-3"),
        ("1", "[in_i]", "0.0254", "m"),
        ("1", "mm[Hg]", "133322", "m-1.s-2.g"),
        ("60", "/min", "1", "s-1"),
        ("4", "{cells}/uL", "4E+9", "m-3"),
        ("2", "m[IU]/mL", "2000", "m-3.[iU]"),
        ("0", "Cel", "273.15", "K"),
    ],
)
def test_canonical(
    ucum: Ucum, value: str, unit: str, expected_value: str, expected_unit: str
) -> None:
    amount, canonical = ucum.canonical(value, unit)
    assert canonical == expected_unit
    assert amount == Decimal(expected_value)


def test_convert(ucum: Ucum) -> None:
    assert ucum.convert(100, "mg/dL", "g/L") == 1
    assert ucum.convert(37, "Cel", "[degF]") == Decimal("98.6")
    assert ucum.convert("98.6", "[degF]", "Cel") == 37
    assert ucum.convert(1, "[lb_av]", "kg") == Decimal("0.45359237")
    assert ucum.convert("5.5", "mmol/L", "umol/L") == 5500
    assert ucum.convert(7, "d", "wk") == 1
    assert ucum.convert(1, "mg{creat}", "mg") == 1
    with pytest.raises(UcumError, match="cannot convert"):
        ucum.convert(1, "mg", "mL")
    with pytest.raises(UcumError, match="cannot convert"):
        ucum.convert(1, "[IU]", "mg")


@pytest.mark.parametrize("bad", ["foo", "mg/", "m//s", "mg dL", "(m", "kg/m2)", "", " mg", "Cel2"])
def test_invalid_units_say_why(ucum: Ucum, bad: str) -> None:
    assert not ucum.is_valid(bad)
    reason = ucum.validate(bad)
    assert reason
    with pytest.raises(UcumError):
        ucum.canonical(1, bad)


def test_special_units_only_alone(ucum: Ucum) -> None:
    assert ucum.is_valid("Cel/h")
    with pytest.raises(UcumError, match="not convertible"):
        ucum.canonical(1, "Cel/h")
