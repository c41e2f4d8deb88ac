"""Operations on single items: unwrapping, typing, equality, equivalence, ordering.

An item is a :class:`~cmio.fhirpath.fhirtypes.Node` (a FHIR value) or a System
value: ``bool``, ``int``, ``Decimal``, ``str``, :class:`Date`, :class:`DateTime`,
:class:`Time` or :class:`Quantity`. See http://hl7.org/fhirpath/N1/#equality and
http://hl7.org/fhirpath/N1/#comparison.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.fhirtypes import Node, to_decimal
from cmio.fhirpath.quantity import Quantity, compare_quantities, convert_value, decimal_equivalent
from cmio.fhirpath.temporal import Date, DateTime, Temporal, Time, compare_temporal

__all__ = [
    "UCUM_SYSTEM",
    "as_bool",
    "compare",
    "equal",
    "equivalent",
    "prim",
    "quantity_of",
    "single",
    "system_name",
    "type_name",
]

UCUM_SYSTEM = "http://unitsofmeasure.org"
_SYSTEM_NAMES: dict[type, str] = {
    bool: "Boolean",
    int: "Integer",
    Decimal: "Decimal",
    str: "String",
    Date: "Date",
    DateTime: "DateTime",
    Time: "Time",
    Quantity: "Quantity",
}
_WHITESPACE = re.compile(r"\s+")


def prim(item: Any) -> Any:
    """The System value of an item: a primitive node's value, else the item itself.

    Date and time nodes hold their JSON text until first used here; the parsed
    value then replaces it (nodes live for one evaluation only).
    """
    if type(item) is Node:
        value = item.value
        if item.type.kind == "primitive":
            if type(value) is str and item.type.load is not item.type.convert:
                value = item.value = item.type.convert(value)
            return value
        return item if type(value) is dict else value
    return item


def system_name(value: Any) -> str | None:
    """``Boolean``, ``Integer``... for a System value, None for other objects."""
    return _SYSTEM_NAMES.get(type(value))


def type_name(item: Any) -> tuple[str, str]:
    """(namespace, name) of an item's type."""
    if type(item) is Node:
        return item.type.namespace, item.type.name
    return "System", _SYSTEM_NAMES.get(type(item), "Any")


def single(items: list[Any], what: str = "operand") -> Any:
    """The single item of a collection, None if empty; error if more than one."""
    if not items:
        return None
    if len(items) > 1:
        raise FhirPathError(f"{what} must be a single item, got {len(items)}")
    return items[0]


def as_bool(items: list[Any], what: str = "operand") -> bool | None:
    """Singleton evaluation as a Boolean (http://hl7.org/fhirpath/N1/#singleton-evaluation-of-collections):
    empty -> None, a Boolean -> itself, any other single item -> True, several -> error."""
    if not items:
        return None
    if len(items) > 1:
        raise FhirPathError(f"{what} must be a single Boolean, got {len(items)} items")
    value = prim(items[0])
    return value if type(value) is bool else True


def quantity_of(item: Any) -> Quantity | None:
    """A System Quantity for a Quantity value or a FHIR Quantity (and its profiles)."""
    if type(item) is Quantity:
        return item
    if type(item) is Node and type(item.value) is dict and "FHIR.Quantity" in item.type.ancestors:
        data = item.value
        value = data.get("value")
        if value is None:
            return None
        code = data.get("code")
        system = data.get("system")
        unit = code if code is not None and system in (UCUM_SYSTEM, None) else data.get("unit")
        return Quantity(to_decimal(value), unit if type(unit) is str else "1")
    return None


def _numeric(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is Decimal


def equal(a: Any, b: Any) -> bool | None:
    """Item equality ``=``; None when uncertain (dates of different precisions,
    quantities of incomparable units)."""
    x, y = prim(a), prim(b)
    tx, ty = type(x), type(y)
    if tx is ty and tx in (str, bool, int, Decimal):
        return bool(x == y)
    if _numeric(x) and _numeric(y):
        return bool(x == y)
    if isinstance(x, Temporal) and isinstance(y, Temporal):
        if isinstance(x, Time) != isinstance(y, Time):
            return False
        result = compare_temporal(x, y)
        return None if result is None else result == 0
    qx, qy = quantity_of(x), quantity_of(y)
    if qx is not None and qy is not None:
        result = compare_quantities(qx, qy)
        return None if result is None else result == 0
    if type(x) is Node and type(y) is Node:
        return bool(x.value == y.value)
    if x is None or y is None:
        return None
    return False


def _normal_text(text: str) -> str:
    return _WHITESPACE.sub(" ", text.strip()).lower()


def equivalent(a: Any, b: Any) -> bool:
    """Item equivalence ``~`` (http://hl7.org/fhirpath/N1/#equivalence)."""
    x, y = prim(a), prim(b)
    if type(x) is str and type(y) is str:
        return _normal_text(x) == _normal_text(y)
    if _numeric(x) and _numeric(y):
        return decimal_equivalent(Decimal(x), Decimal(y))
    if isinstance(x, Temporal) and isinstance(y, Temporal):
        if isinstance(x, Time) != isinstance(y, Time) or x.precision != y.precision:
            return False
        return compare_temporal(x, y) == 0
    qx, qy = quantity_of(x), quantity_of(y)
    if qx is not None and qy is not None:
        value = convert_value(qy, qx.unit)
        return value is not None and decimal_equivalent(qx.value, value)
    result = equal(x, y)
    return bool(result)


def compare(a: Any, b: Any) -> int | None:
    """Ordering of two items for ``< <= > >=``: -1, 0, 1, or None when uncertain.

    Raises:
        FhirPathError: if the two items cannot be compared.
    """
    x, y = prim(a), prim(b)
    if _numeric(x) and _numeric(y):
        order: int = (x > y) - (x < y)
        return order
    if type(x) is str and type(y) is str:
        return (x > y) - (x < y)
    if isinstance(x, Temporal) and isinstance(y, Temporal):
        try:
            return compare_temporal(x, y)
        except TypeError as exc:
            raise FhirPathError(str(exc)) from None
    qx, qy = quantity_of(x), quantity_of(y)
    if qx is not None and qy is not None:
        return compare_quantities(qx, qy)
    raise FhirPathError(f"cannot compare {type_name(a)[1]} with {type_name(b)[1]}")
