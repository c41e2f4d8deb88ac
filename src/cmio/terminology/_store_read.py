"""Reading helpers of the concept store (rows to concepts, text terms, property scans)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from cmio.terminology.concept_types import Concept, decode_blob, property_text

__all__ = ["COLUMNS", "concept_of_row", "like_terms", "scan_property"]

COLUMNS = "c.code, c.display, c.definition, c.active, c.blob"
"""The concept columns :func:`concept_of_row` reads (table alias ``c``)."""


def concept_of_row(row: tuple[Any, ...]) -> Concept:
    """A :class:`Concept` from a row of :data:`COLUMNS`."""
    parents, properties, designations = decode_blob(row[4])
    return Concept(
        code=row[0],
        display=row[1],
        definition=row[2],
        active=bool(row[3]),
        parents=parents,
        properties=properties,
        designations=designations,
    )


def like_terms(text: str | None) -> list[str]:
    """LIKE patterns (escape ``\\``), one per whitespace-separated word of ``text``."""
    if not text:
        return []
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [f"%{token}%" for token in escaped.split()]


def scan_property(
    conn: sqlite3.Connection, sid: int, prop: str, value: str | None
) -> Iterator[str]:
    """Codes of system ``sid`` with property ``prop`` (= ``value``), decoding every concept."""
    rows = conn.execute(
        "SELECT code, blob FROM concepts WHERE sid = ? AND blob IS NOT NULL ORDER BY id",
        (sid,),
    )
    for code, blob in rows:
        _, properties, _ = decode_blob(blob)
        if any(p == prop and (value is None or property_text(v) == value) for p, v in properties):
            yield code
