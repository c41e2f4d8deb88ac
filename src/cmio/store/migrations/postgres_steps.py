"""The PostgreSQL store's schema steps (see :mod:`cmio.store.migrations`).

1. resources (with a generated JSONB column), their history and the token index;
2. the typed search-index tables of https://hl7.org/fhir/R4/search.html#ptypes;
3. the full-text index (a GIN ``tsvector`` expression index), resumable job state and
   the hash-chained audit trail.
"""

from __future__ import annotations

from cmio.indexing.tables import INDEX_TABLES, ddl
from cmio.store._audit import AUDIT_DDL
from cmio.store.migrations import Step

__all__ = ["steps"]

_C = 'COLLATE "C" NOT NULL'
_BASE = (
    "CREATE TABLE IF NOT EXISTS schema_version (component text PRIMARY KEY,"
    " version integer NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS resource (type text {_C}, id text {_C},"
    f" version integer NOT NULL, last_updated text {_C}, deleted boolean NOT NULL,"
    " data text, body jsonb GENERATED ALWAYS AS (data::jsonb) STORED, PRIMARY KEY (type, id))",
    "CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, last_updated)",
    "CREATE INDEX IF NOT EXISTS resource_lu ON resource (last_updated)",
    "CREATE TABLE IF NOT EXISTS resource_history (seq bigint GENERATED ALWAYS AS IDENTITY"
    f" PRIMARY KEY, type text {_C}, id text {_C}, version integer NOT NULL,"
    f" last_updated text {_C}, deleted boolean NOT NULL, method text NOT NULL, data text,"
    " UNIQUE (type, id, version))",
    "CREATE INDEX IF NOT EXISTS resource_history_type_seq ON resource_history (type, seq)",
    f"CREATE TABLE IF NOT EXISTS token_index (resource_type text {_C}, resource_id text {_C},"
    f' param text {_C}, system text COLLATE "C", value text {_C})',
    "CREATE INDEX IF NOT EXISTS token_index_lookup"
    " ON token_index (resource_type, param, value, system)",
)


def _later(statement: str) -> bool:
    """Whether a statement of :func:`ddl` belongs to step 3 (text index, job state)."""
    return "text_" in statement or "job_state" in statement


def steps() -> tuple[Step, ...]:
    """The steps, oldest first."""
    typed = ddl("postgres")
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
            "full-text index (GIN tsvector), resumable job state and the audit trail",
            (
                *typed,  # the tables of step 3, and the owner indexes of step 2 that a
                # database created at version 2 lacks: they replace its *_resource ones
                *(f"DROP INDEX IF EXISTS {t.name}_resource" for t in INDEX_TABLES),
                *AUDIT_DDL["postgres"],
            ),
            reindex_if_missing="text_index",
        ),
    )
