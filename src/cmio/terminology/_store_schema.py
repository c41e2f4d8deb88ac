"""SQLite schema of the concept store and version ordering."""

from __future__ import annotations

import re

__all__ = ["SCHEMA", "natural_key"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS systems (
    sid INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT, title TEXT,
    count INTEGER NOT NULL,
    properties TEXT NOT NULL,
    hierarchy TEXT,
    lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    fingerprint TEXT,
    loaded TEXT NOT NULL,
    unindexed TEXT NOT NULL DEFAULT '[]',
    UNIQUE (url, version)
);
CREATE TABLE IF NOT EXISTS concepts (
    id INTEGER PRIMARY KEY,
    sid INTEGER NOT NULL,
    code TEXT NOT NULL,
    display TEXT, definition TEXT,
    active INTEGER NOT NULL,
    terms TEXT NOT NULL,
    blob BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS concepts_code ON concepts (sid, code);
CREATE TABLE IF NOT EXISTS edges (
    parent INTEGER NOT NULL, child INTEGER NOT NULL, PRIMARY KEY (parent, child)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_child ON edges (child, parent);
CREATE TABLE IF NOT EXISTS closure (
    anc INTEGER NOT NULL, des INTEGER NOT NULL, PRIMARY KEY (anc, des)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS props (
    sid INTEGER NOT NULL, prop TEXT NOT NULL, value TEXT NOT NULL, cid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS props_value ON props (sid, prop, value);
"""
"""Tables: systems, concepts (ids in one block per system), edges, closure, props."""

_PARTS = re.compile(r"(\d+)")


def natural_key(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally: ``2.9`` < ``2.10``, ``20240301`` < ``20250101``."""
    if not version:
        return ()
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _PARTS.split(version) if part
    )
