"""The typed search-index tables (https://hl7.org/fhir/R4/search.html#ptypes).

Every table starts with ``resource_type, resource_id, param``; the remaining
columns depend on the parameter type. ``token_index`` predates this module and
keeps its layout (``system, value``); token display text (for ``:text``) goes
to ``string_index`` under the parameter name ``<code>:text`` and identifiers of
references (for ``:identifier``) to ``token_index`` under ``<code>:identifier``.
Dates are stored as half-open instant ranges ``[low, high)`` covering their
precision; numbers and quantities as ``low = high = value`` (the search value's
precision makes the range at query time), quantities also in UCUM base units.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "INDEX_TABLES",
    "NAMED_INDEXES",
    "TEXT_FEED_TABLE",
    "TEXT_INSERT_TRIGGER",
    "TS_CONFIG",
    "IndexTable",
    "covering_ddl",
    "ddl",
    "insert_sql",
]


class IndexTable(NamedTuple):
    """One index table: its name, its value columns (name, sqlite type, postgres type)
    and the extra lookup indexes (column lists after ``resource_type, param``)."""

    name: str
    columns: tuple[tuple[str, str, str], ...]
    lookups: tuple[tuple[str, ...], ...]


_TEXT = ("TEXT", 'text COLLATE "C"')
_REAL = ("REAL", "double precision")

INDEX_TABLES: tuple[IndexTable, ...] = (
    IndexTable(
        "token_index",
        (("system", *_TEXT), ("value", *_TEXT)),
        (("value", "system"),),
    ),
    IndexTable("string_index", (("norm", *_TEXT), ("exact", *_TEXT)), (("norm",),)),
    IndexTable(
        "reference_index",
        (("target_type", *_TEXT), ("target_id", *_TEXT), ("url", *_TEXT)),
        (("target_id", "target_type"), ("url",)),
    ),
    IndexTable("date_index", (("low", *_TEXT), ("high", *_TEXT)), (("low", "high"), ("high",))),
    IndexTable("number_index", (("low", *_REAL), ("high", *_REAL)), (("low", "high"),)),
    IndexTable(
        "quantity_index",
        (
            ("low", *_REAL),
            ("high", *_REAL),
            ("system", *_TEXT),
            ("code", *_TEXT),
            ("canon_low", *_REAL),
            ("canon_high", *_REAL),
            ("canon_code", *_TEXT),
        ),
        (("code", "low"), ("canon_code", "canon_low")),
    ),
    IndexTable("uri_index", (("value", *_TEXT),), (("value",),)),
    # ``_text`` (narrative) and ``_content`` (all text): one row per resource and
    # parameter, ``body`` its distinct normalized words; searched through FTS5 on
    # SQLite and a GIN-indexed tsvector on PostgreSQL (see :func:`ddl`).
    IndexTable("text_index", (("body", "TEXT", "text"),), ()),
)
#: SQLite (schema step 4): columns appended to these indexes so that the statements the
#: search compiler writes read them alone (a "covering index",
#: https://www.sqlite.org/queryplanner.html#covidx): a probe per candidate (owner index
#: with the token's values; the date sort key), a ``_has`` or chain
#: lookup that selects ``resource_id``. Same number of B-trees per row as before.
SQLITE_COVERING: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token_index_owner", ("value", "system")),
    ("token_index_lookup", ("resource_id",)),
    ("reference_index_lookup", ("resource_id",)),
    # ``low`` only: the sort key (``MIN``/``MAX(low)``); with ``high`` too the index would
    # cover a ``ge`` driver, which SQLite then scans for the type instead of the lookups
    ("date_index_owner", ("low",)),
)
#: SQLite: indexes that search statements name (``INDEXED BY``), so they must always
#: exist: a bulk load keeps them (SQLite refuses a statement naming a missing index)
NAMED_INDEXES = ("reference_index_owner",)
#: the PostgreSQL text-search configuration of ``text_index`` (words are already
#: normalized, so no stemming or stop words)
TS_CONFIG = "simple"


def ddl(dialect: str) -> list[str]:
    """``CREATE TABLE/INDEX IF NOT EXISTS`` statements for ``dialect`` (sqlite, postgres)."""
    pos = 1 if dialect == "sqlite" else 2
    key = _TEXT[pos - 1]
    out: list[str] = []
    for table in INDEX_TABLES:
        cols = [
            f"resource_type {key} NOT NULL",
            f"resource_id {key} NOT NULL",
            f"param {key} NOT NULL",
        ]
        if table.name == "text_index" and dialect == "sqlite":
            cols.insert(0, "doc INTEGER PRIMARY KEY")  # the FTS5 rowid, stable across VACUUM
        for col in table.columns:
            not_null = " NOT NULL" if table.name == "token_index" and col[0] == "value" else ""
            cols.append(f"{col[0]} {col[pos]}{not_null}")
        out.append(f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(cols)})")
        # the owner index: deletes, correlated EXISTS probes and sort keys
        out.append(_index_sql(dialect, table, "owner", ("resource_type", "resource_id", "param")))
        for i, lookup in enumerate(table.lookups):
            suffix = "lookup" if i == 0 else f"lookup{i + 1}"
            out.append(_index_sql(dialect, table, suffix, ("resource_type", "param", *lookup)))
    out.append(  # resumable background jobs ($reindex): their state as JSON, by name
        f"CREATE TABLE IF NOT EXISTS job_state (name {key} PRIMARY KEY, state {key} NOT NULL)"
    )
    return out + _fulltext_ddl(dialect)


def _index_sql(dialect: str, table: IndexTable, suffix: str, columns: tuple[str, ...]) -> str:
    """``CREATE INDEX IF NOT EXISTS <table>_<suffix>``, covering on SQLite (see
    :data:`SQLITE_COVERING`)."""
    name = f"{table.name}_{suffix}"
    if dialect == "sqlite":
        columns += dict(SQLITE_COVERING).get(name, ())
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(columns)})"


def covering_ddl() -> list[str]:
    """SQLite schema step 4: each index of :data:`SQLITE_COVERING` dropped and built
    again with its covering columns (https://www.sqlite.org/lang_createindex.html)."""
    out: list[str] = []
    names = dict(SQLITE_COVERING)
    for statement in ddl("sqlite"):
        if statement.startswith("CREATE INDEX"):
            name = statement.split()[5]
            if name in names:
                out += [f"DROP INDEX IF EXISTS {name}", statement]
    assert len(out) == 2 * len(names)
    return out


#: SQLite: a transaction that feeds its new ``text_index`` rows to FTS5 itself, at commit
#: (:mod:`cmio.store._sqlitefts`), holds its mark here; never committed with a row in it
TEXT_FEED_TABLE = "CREATE TABLE IF NOT EXISTS text_feed (mark INTEGER NOT NULL)"
#: SQLite: the insert trigger, idle while a transaction feeds its rows itself
TEXT_INSERT_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS text_index_ai AFTER INSERT ON text_index"
    " WHEN NOT EXISTS (SELECT 1 FROM text_feed) BEGIN"
    " INSERT INTO text_fts (rowid, body) VALUES (new.doc, new.body); END"
)


def _fulltext_ddl(dialect: str) -> list[str]:
    """The full-text index over ``text_index.body``.

    SQLite: an external-content FTS5 table kept in step by triggers
    (https://www.sqlite.org/fts5.html#external_content_tables); PostgreSQL: a GIN
    expression index (https://www.postgresql.org/docs/15/textsearch-tables.html).
    """
    if dialect != "sqlite":
        return [
            "CREATE INDEX IF NOT EXISTS text_index_fts ON text_index"
            f" USING GIN (to_tsvector('{TS_CONFIG}', body))"
        ]
    return [
        "CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5("
        "body, content='text_index', content_rowid='doc', tokenize='unicode61')",
        TEXT_FEED_TABLE,
        TEXT_INSERT_TRIGGER,
        "CREATE TRIGGER IF NOT EXISTS text_index_ad AFTER DELETE ON text_index BEGIN"
        " INSERT INTO text_fts (text_fts, rowid, body) VALUES ('delete', old.doc, old.body); END",
    ]


def insert_sql(table: IndexTable) -> str:
    """The ``INSERT`` statement for one table (``?`` placeholders)."""
    names = ["resource_type", "resource_id", "param", *(c[0] for c in table.columns)]
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
