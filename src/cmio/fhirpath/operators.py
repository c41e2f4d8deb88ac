"""FHIRPath operators over collections (http://hl7.org/fhirpath/N1/#operations).

Each binary operator is a function ``(left, right) -> list`` on already
evaluated operand collections; the Boolean operators are compiled separately
(:mod:`cmio.fhirpath.compiler`) because they short-circuit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, DivisionByZero, InvalidOperation
from types import MappingProxyType
from typing import Any

from cmio.fhirpath.context import Context
from cmio.fhirpath.errors import FhirPathError
from cmio.fhirpath.quantity import Quantity, calendar_unit, convert_value
from cmio.fhirpath.temporal import Temporal, add_calendar
from cmio.fhirpath.values import (
    as_bool,
    compare,
    equal,
    equivalent,
    prim,
    quantity_of,
    single,
    type_name,
)

__all__ = ["BINARY", "distinct", "logic", "negate"]

Binary = Callable[[list[Any], list[Any]], list[Any]]
Fn = Callable[[Context, list[Any]], list[Any]]


def _hash_key(item: Any) -> Any:
    value = prim(item)
    kind = type(value)
    if kind is str:
        return ("s", value)
    if kind is bool:
        return ("b", value)
    if kind is int or kind is Decimal:
        return ("n", value)
    return None


def distinct(items: list[Any]) -> list[Any]:
    """The items without duplicates (by equality), first occurrences kept in order."""
    if len(items) < 2:
        return items
    out: list[Any] = []
    seen: set[Any] = set()
    others: list[Any] = []
    for item in items:
        key = _hash_key(item)
        if key is not None:
            if key not in seen:
                seen.add(key)
                out.append(item)
        elif not any(equal(item, other) is True for other in others):
            others.append(item)
            out.append(item)
    return out


def contains_item(items: list[Any], item: Any) -> bool:
    """True if a collection has an item equal to ``item``."""
    return any(equal(item, other) is True for other in items)


def _equals(left: list[Any], right: list[Any]) -> bool | None:
    if not left or not right:
        return None
    if len(left) != len(right):
        return False
    uncertain = False
    for a, b in zip(left, right, strict=True):
        result = equal(a, b)
        if result is False:
            return False
        if result is None:
            uncertain = True
    return None if uncertain else True


def _equivalent(left: list[Any], right: list[Any]) -> bool:
    if len(left) != len(right):
        return False
    remaining = list(right)
    for a in left:
        for i, b in enumerate(remaining):
            if equivalent(a, b):
                del remaining[i]
                break
        else:
            return False
    return True


def _eq(left: list[Any], right: list[Any]) -> list[Any]:
    result = _equals(left, right)
    return [] if result is None else [result]


def _ne(left: list[Any], right: list[Any]) -> list[Any]:
    result = _equals(left, right)
    return [] if result is None else [not result]


def _comparison(test: Callable[[int], bool]) -> Binary:
    def operator(left: list[Any], right: list[Any]) -> list[Any]:
        a, b = single(left), single(right)
        if a is None or b is None:
            return []
        result = compare(a, b)
        return [] if result is None else [test(result)]

    return operator


def _arithmetic(name: str, apply: Callable[[Any, Any], Any]) -> Binary:
    def operator(left: list[Any], right: list[Any]) -> list[Any]:
        a, b = single(left, f"left operand of {name}"), single(right, f"right operand of {name}")
        if a is None or b is None:
            return []
        try:
            result = apply(prim(a), prim(b))
        except (DivisionByZero, ZeroDivisionError):
            return []
        except (InvalidOperation, OverflowError) as exc:
            raise FhirPathError(f"{name}: {exc}") from None
        if result is NotImplemented:
            raise FhirPathError(
                f"operator {name} is not defined for {type_name(a)[1]} and {type_name(b)[1]}"
            )
        return [] if result is None else [result]

    return operator


def _number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is Decimal


def _temporal_shift(value: Temporal, quantity: Quantity, sign: int) -> Temporal:
    unit = calendar_unit(quantity.unit)
    if unit is None:
        raise FhirPathError(f"cannot add {quantity} to a date/time: not a calendar duration")
    return add_calendar(value, sign * int(quantity.value), unit)


def _quantity_sum(a: Quantity, b: Quantity, sign: int) -> Quantity | None:
    value = convert_value(b, a.unit)
    if value is None:
        return None
    return Quantity(a.value + sign * value, a.unit)


def _add(a: Any, b: Any) -> Any:
    if _number(a) and _number(b):
        return a + b
    if type(a) is str and type(b) is str:
        return a + b
    qb = quantity_of(b)
    if isinstance(a, Temporal) and qb is not None:
        return _temporal_shift(a, qb, 1)
    qa = quantity_of(a)
    if qa is not None and qb is not None:
        return _quantity_sum(qa, qb, 1)
    return NotImplemented


def _subtract(a: Any, b: Any) -> Any:
    if _number(a) and _number(b):
        return a - b
    qb = quantity_of(b)
    if isinstance(a, Temporal) and qb is not None:
        return _temporal_shift(a, qb, -1)
    qa = quantity_of(a)
    if qa is not None and qb is not None:
        return _quantity_sum(qa, qb, -1)
    return NotImplemented


def _unit_product(a: str, b: str, divide: bool) -> str:
    if divide:
        if b == "1":
            return a
        return f"{a}/({b})" if any(c in b for c in "./") else f"{a}/{b}"
    if a == "1":
        return b
    return a if b == "1" else f"{a}.{b}"


def _multiply(a: Any, b: Any) -> Any:
    if _number(a) and _number(b):
        return a * b
    qa, qb = quantity_of(a), quantity_of(b)
    if qa is not None and qb is not None:
        return Quantity(qa.value * qb.value, _unit_product(qa.unit, qb.unit, False))
    if qa is not None and _number(b):
        return Quantity(qa.value * b, qa.unit)
    if qb is not None and _number(a):
        return Quantity(a * qb.value, qb.unit)
    return NotImplemented


def _divide(a: Any, b: Any) -> Any:
    if _number(a) and _number(b):
        return None if b == 0 else Decimal(a) / Decimal(b)
    qa, qb = quantity_of(a), quantity_of(b)
    if qa is not None and qb is not None:
        if qa.unit == qb.unit:
            return Quantity(qa.value / qb.value, "1")
        return Quantity(qa.value / qb.value, _unit_product(qa.unit, qb.unit, True))
    if qa is not None and _number(b):
        return Quantity(qa.value / Decimal(b), qa.unit)
    return NotImplemented


def _div(a: Any, b: Any) -> Any:
    if not (_number(a) and _number(b)):
        return NotImplemented
    if b == 0:
        return None
    return (
        int(Decimal(a) / Decimal(b)) if type(a) is Decimal or type(b) is Decimal else _int_div(a, b)
    )


def _int_div(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _mod(a: Any, b: Any) -> Any:
    if not (_number(a) and _number(b)):
        return NotImplemented
    if b == 0:
        return None
    if type(a) is int and type(b) is int:
        return a - b * _int_div(a, b)
    return Decimal(a) % Decimal(b)


def _concatenate(left: list[Any], right: list[Any]) -> list[Any]:
    a, b = single(left, "left operand of &"), single(right, "right operand of &")
    x, y = prim(a), prim(b)
    if (x is not None and type(x) is not str) or (y is not None and type(y) is not str):
        raise FhirPathError("operator & needs String operands")
    return [(x or "") + (y or "")]


def _union(left: list[Any], right: list[Any]) -> list[Any]:
    return distinct(left + right)


def _in(left: list[Any], right: list[Any]) -> list[Any]:
    item = single(left, "left operand of in")
    return [] if item is None else [contains_item(right, item)]


def _contains(left: list[Any], right: list[Any]) -> list[Any]:
    item = single(right, "right operand of contains")
    return [] if item is None else [contains_item(left, item)]


def negate(items: list[Any]) -> list[Any]:
    """Unary minus (http://hl7.org/fhirpath/N1/#unary-operators)."""
    item = single(items, "operand of unary -")
    value = prim(item)
    if value is None:
        return []
    if type(value) is int:
        return [-value]
    if type(value) is Decimal:
        return [value.copy_negate() if value else value]
    quantity = quantity_of(item)
    if quantity is not None:
        return [Quantity(quantity.value.copy_negate(), quantity.unit)]
    raise FhirPathError(f"unary - is not defined for {type_name(item)[1]}")


BINARY: Mapping[str, Binary] = MappingProxyType(
    {
        "=": _eq,
        "!=": _ne,
        "~": lambda left, right: [_equivalent(left, right)],
        "!~": lambda left, right: [not _equivalent(left, right)],
        "<": _comparison(lambda r: r < 0),
        "<=": _comparison(lambda r: r <= 0),
        ">": _comparison(lambda r: r > 0),
        ">=": _comparison(lambda r: r >= 0),
        "+": _arithmetic("+", _add),
        "-": _arithmetic("-", _subtract),
        "*": _arithmetic("*", _multiply),
        "/": _arithmetic("/", _divide),
        "div": _arithmetic("div", _div),
        "mod": _arithmetic("mod", _mod),
        "&": _concatenate,
        "|": _union,
        "in": _in,
        "contains": _contains,
    }
)
"""Operator -> implementation, for all but ``and``, ``or``, ``xor``, ``implies``, ``is``, ``as``."""


def logic(op: str, left: Fn, right: Fn) -> Fn:
    """The three-valued Boolean operators (http://hl7.org/fhirpath/N1/#boolean-logic)."""
    if op == "and":

        def and_(ctx: Context, focus: list[Any]) -> list[Any]:
            a = as_bool(left(ctx, focus), "left operand of and")
            if a is False:
                return [False]
            b = as_bool(right(ctx, focus), "right operand of and")
            if b is False:
                return [False]
            return [] if a is None or b is None else [True]

        return and_
    if op == "or":

        def or_(ctx: Context, focus: list[Any]) -> list[Any]:
            a = as_bool(left(ctx, focus), "left operand of or")
            if a is True:
                return [True]
            b = as_bool(right(ctx, focus), "right operand of or")
            if b is True:
                return [True]
            return [] if a is None or b is None else [False]

        return or_
    if op == "xor":

        def xor(ctx: Context, focus: list[Any]) -> list[Any]:
            a = as_bool(left(ctx, focus), "left operand of xor")
            b = as_bool(right(ctx, focus), "right operand of xor")
            return [] if a is None or b is None else [a != b]

        return xor

    def implies(ctx: Context, focus: list[Any]) -> list[Any]:
        a = as_bool(left(ctx, focus), "left operand of implies")
        if a is False:
            return [True]
        b = as_bool(right(ctx, focus), "right operand of implies")
        if a is True:
            return [] if b is None else [b]
        return [True] if b is True else []

    return implies
