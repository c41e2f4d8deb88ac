"""Column types of a view's output: FHIR type -> Arrow type, and value conversion.

Every engine returns the same Arrow schema for a view
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#type-hinting-with-type):
``boolean`` -> bool, ``integer``/``positiveInt``/``unsignedInt``/``integer64`` -> int64,
``decimal`` -> decimal128(38, 10) (exact), everything else (dates, times, codes,
complex values as JSON text) -> string; ``collection: true`` columns are lists.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa

from cmio.views.dialects.base import SqlKind
from cmio.views.tree import Column, View

__all__ = [
    "DECIMAL_PRECISION",
    "DECIMAL_SCALE",
    "INTEGER_TYPES",
    "arrow_schema",
    "arrow_type",
    "kind_of",
    "python_value",
]

INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})
"""FHIR types whose columns are 64-bit integers."""
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 10
"""Decimal columns keep 10 digits after the point (exact below that)."""


def kind_of(ftype: str | None) -> SqlKind:
    """The output kind of a FHIR type: ``boolean``, ``integer``, ``decimal`` or ``string``."""
    if ftype == "boolean":
        return "boolean"
    if ftype in INTEGER_TYPES:
        return "integer"
    if ftype == "decimal":
        return "decimal"
    return "string"


_ARROW = {
    "boolean": pa.bool_(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
    "string": pa.string(),
}


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of a column's values."""
    scalar = _ARROW[kind_of(column.type)]
    return pa.list_(scalar) if column.collection else scalar


def arrow_schema(view: View) -> pa.Schema:
    """The Arrow schema of a view's output."""
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in view.columns()])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    text = str(value)
    if text.startswith("@T"):
        return text[2:]
    if text.startswith("@"):
        # A DateTime of date precision prints as @2024-11-26T; FHIR JSON has 2024-11-26.
        return text[1:].removesuffix("T")
    return text


def python_value(value: Any, kind: str) -> Any:
    """Convert one FHIRPath result (System value or JSON) to a column's Python value.

    Raises:
        ValueError: the value does not convert to the column's kind.
    """
    if value is None:
        return None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"{value!r} is not a boolean")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise ValueError(f"{value!r} is not a decimal")
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return _text(value)
