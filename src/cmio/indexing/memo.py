"""Index rows remembered per JSON value, across resources.

The values search parameters index repeat: an Observation's ``code`` and ``category``
CodeableConcepts, its unit-bearing Quantity, its ``subject`` Reference, an Encounter's
``class`` Coding. An adder (:mod:`cmio.indexing.values`) turns one value into rows that
depend only on the value and the parameter name, and the name only as a prefix of each
row's first column (``code``, ``code:text``, ``code:of-type``, ``code:identifier``).
:func:`memoize` runs the adder once per distinct JSON object (keyed by its serialized
bytes, which tell ``1`` from ``1.0`` and ``true`` from ``1``) with an empty parameter
name, remembers the rows under each parameter name it meets the object with, and
afterwards appends the remembered rows (shared tuples: rows are never changed).
See https://hl7.org/fhir/R4/search.html#ptypes for what each adder indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from cmio.indexing.values import Rows

__all__ = ["MAX_KEY", "Adder", "memoize"]

Adder = Callable[[Rows, str, Any], None]
"""Appends the rows of one value under one parameter name (``out, code, value``)."""
Made = tuple[tuple[str, tuple[tuple[Any, ...], ...]], ...]
"""Per table, in the adder's order, the rows of a value under the name ``""``."""
_LIMIT = 20_000
#: longer serialized values are not remembered (a SampledData's ``data``, a Bundle's
#: first resource): memory stays bounded by ``limit`` x this
MAX_KEY = 1024


def memoize(adder: Adder, limit: int = _LIMIT) -> Adder:
    """``adder`` with its rows for JSON objects remembered (at most ``limit`` objects;
    the memo is emptied when full). Other values (strings, numbers, parsed dates) go
    to ``adder`` directly: their rows are as cheap to make as to look up; so do objects
    longer than :data:`MAX_KEY` bytes serialized. A key is stored as a right-sized copy
    (orjson's result keeps a larger buffer).

    The result appends exactly what ``adder`` appends, in the same order, and creates
    the tables of ``out`` in the same order (an empty table included).
    """
    memo: dict[bytes, Made] = {}
    named: dict[tuple[str, bytes], Made] = {}
    dumps = orjson.dumps

    def add(out: Rows, code: str, value: Any) -> None:
        if type(value) is not dict:
            adder(out, code, value)
            return
        try:
            key = dumps(value)
        except TypeError:  # not plain JSON (a value the FHIRPath engine made)
            adder(out, code, value)
            return
        if len(key) > MAX_KEY:
            adder(out, code, value)
            return
        made = named.get((code, key))
        if made is None:
            blank = memo.get(key)
            key = memoryview(key).tobytes()
            if blank is None:
                rows: Rows = {}
                adder(rows, "", value)
                blank = tuple((table, tuple(found)) for table, found in rows.items())
                if len(memo) >= limit:
                    memo.clear()
                memo[key] = blank
            made = tuple(
                (table, tuple([(code + row[0], *row[1:]) for row in found]))
                for table, found in blank
            )
            if len(named) >= limit:
                named.clear()
            named[(code, key)] = made
        for table, found in made:
            target = out.get(table)
            if target is None:
                out[table] = list(found)
            else:
                target.extend(found)

    return add
