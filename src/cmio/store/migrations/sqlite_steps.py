"""The SQLite store's schema steps (see :mod:`cmio.store.migrations`).

1. resources, their history and the token index (the first release);
2. the typed search-index tables (string, token, reference, date, number, quantity,
   uri) of https://hl7.org/fhir/R4/search.html#ptypes;
3. the full-text index (``_text``/``_content`` through FTS5), resumable job state and
   the hash-chained audit trail;
4. covering search indexes: the token owner index carries the values, the date owner
   index the sort value, the token and reference lookup indexes the resource id
   (:data:`cmio.indexing.tables.SQLITE_COVERING`).
"""

from __future__ import annotations

from cmio.indexing.tables import INDEX_TABLES, covering_ddl, ddl
from cmio.store._audit import AUDIT_DDL
from cmio.store.migrations import Step

__all__ = ["steps"]

_BASE = (
    "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY,"
    " version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS resource (type TEXT NOT NULL, id TEXT NOT NULL,"
    " version INTEGER NOT NULL, last_updated TEXT NOT NULL, deleted INTEGER NOT NULL,"
    " data BLOB, PRIMARY KEY (type, id))",
    "CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, last_updated)",
    "CREATE TABLE IF NOT EXISTS resource_history (seq INTEGER PRIMARY KEY,"
    " type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,"
    " last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, method TEXT NOT NULL,"
    " data BLOB, UNIQUE (type, id, version))",
    "CREATE INDEX IF NOT EXISTS resource_history_type_seq ON resource_history (type, seq)",
    "CREATE TABLE IF NOT EXISTS token_index (resource_type TEXT NOT NULL,"
    " resource_id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, value TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS token_index_lookup"
    " ON token_index (resource_type, param, value, system)",
)


def _later(statement: str) -> bool:
    """Whether a statement of :func:`ddl` belongs to step 3 (text index, job state)."""
    return "text_" in statement or "job_state" in statement


def steps() -> tuple[Step, ...]:
    """The steps, oldest first."""
    typed = ddl("sqlite")
    return (
        Step(1, "resources, history and the token index", _BASE),
        Step(
            2,
            "typed search-index tables (string, token, reference, date, number, quantity, uri)",
            (
                *(s for s in typed if not _later(s)),
                "CREATE INDEX IF NOT EXISTS token_index_param ON token_index (param, value, system)",
            ),
            reindex_if_missing="string_index",
        ),
        Step(
            3,
            "full-text index (FTS5), resumable job state and the audit trail",
            (
                *typed,  # the tables of step 3, and the owner indexes of step 2 that a
                # database created at version 2 lacks: they replace its *_resource ones
                *(f"DROP INDEX IF EXISTS {t.name}_resource" for t in INDEX_TABLES),
                *AUDIT_DDL["sqlite"],
            ),
            reindex_if_missing="text_index",
        ),
        Step(
            4,
            "covering search indexes: token owner index with the values, date owner index"
            " with the sort value, token and reference lookup indexes with the resource id",
            tuple(covering_ddl()),
        ),
    )
