"""Reading helpers of the concept store (rows to concepts, text terms, property scans)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from cmio.terminology.concept_types import Concept, decode_blob, property_text

__all__ = ["COLUMNS", "ConceptRow", "concept_of_row", "like_terms", "page_below", "scan_property"]

COLUMNS = "c.code, c.display, c.definition, c.active, c.blob"
"""The concept columns :func:`concept_of_row` reads (table alias ``c``)."""

ConceptRow = tuple[str, str | None, str | None, int, bytes | None]
"""One row of :data:`COLUMNS`: code, display, definition, active, blob."""


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


def page_below(
    conn: sqlite3.Connection, top: int, offset: int, count: int
) -> tuple[int, list[ConceptRow]]:
    """Concept ``top`` and every concept below it (is-a), in id order, paged.

    The closure's primary key ``(anc, des)`` already lists the descendants in id order,
    so the page is read straight from it (no sort, no scan of the system's concepts);
    ``top`` itself (not in its own closure) is merged in at its rank.

    Returns:
        the total number of such concepts and the rows of ``offset .. offset+count``.
    """
    total, rank = conn.execute(
        "SELECT count(*), count(CASE WHEN des < ?1 THEN 1 END) FROM closure WHERE anc = ?1",
        (top,),
    ).fetchone()
    offset, count = max(offset, 0), max(count, 0)
    skip = offset - 1 if offset > rank else offset
    rows: list[ConceptRow] = conn.execute(
        f"SELECT {COLUMNS} FROM closure k JOIN concepts c ON c.id = k.des"
        " WHERE k.anc = ? ORDER BY k.des LIMIT ? OFFSET ?",
        (top, count, skip),
    ).fetchall()
    if offset <= rank < offset + count:
        own = conn.execute(f"SELECT {COLUMNS} FROM concepts c WHERE c.id = ?", (top,)).fetchone()
        rows.insert(rank - offset, own)
        del rows[count:]
    return int(total) + 1, rows
