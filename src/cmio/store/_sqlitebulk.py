"""SQLite bulk-load mode: index maintenance deferred to the end of a large import.

Inserting millions of search-index rows one by one into B-trees keyed on random
resource ids, plus one FTS5 update per ``text_index`` row, costs most of an import's
write time. When an import is large relative to the store, :func:`defer_indexes` drops
the index tables' secondary indexes and the FTS5 insert trigger (recording their DDL in
``job_state`` in the same, durable transaction), the rows are appended, and
:func:`restore_indexes` rebuilds them once (``CREATE INDEX`` sorts the rows; FTS5
``'rebuild'`` re-reads ``text_index``) in one transaction that also removes the record.
See https://www.sqlite.org/lang_createindex.html and
https://www.sqlite.org/fts5.html#the_rebuild_command.

Crash safety: every step is a transaction; a process that dies mid-load leaves the
record behind, and the next :class:`~cmio.store.sqlite.SqliteRepository` opened on the
file rebuilds what is missing before anything else (:func:`restore_indexes`), so the
store is consistent again; re-running the import adds no duplicates (``put_many`` keeps
unchanged resources). While the indexes are deferred, searches of other connections stay
correct but are slower, and ``_text``/``_content`` do not see the rows being loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson

from cmio.indexing.tables import NAMED_INDEXES

__all__ = [
    "MARKER",
    "defer_indexes",
    "loading",
    "recover",
    "restore_indexes",
    "stored_versions",
]

#: the ``job_state`` row holding the DDL dropped by a bulk load in progress
MARKER = "store:bulk-load"
_TRIGGER = "text_index_ai"
_TABLES = (
    "token_index",
    "string_index",
    "reference_index",
    "date_index",
    "number_index",
    "quantity_index",
    "uri_index",
    "text_index",
)


def _lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".bulk-lock")


@contextlib.contextmanager
def loading(db: Path) -> Iterator[None]:
    """Hold the bulk-load lock of database file ``db`` (an exclusive ``flock`` beside it)
    while loading, so that :func:`recover` in other processes leaves the load alone."""
    fd = os.open(_lock_path(db), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def recover(conn: sqlite3.Connection, db: Path) -> bool:
    """Rebuild the indexes of a bulk load that died (its record is left and no process
    holds its lock); called when a repository opens the file. Returns whether it did."""
    if conn.execute("SELECT 1 FROM job_state WHERE name = ?", (MARKER,)).fetchone() is None:
        return False
    fd = os.open(_lock_path(db), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a load is running: it rebuilds them when it ends
        return restore_indexes(conn)
    finally:
        os.close(fd)


def stored_versions(conn: sqlite3.Connection) -> int:
    """About how many versions the store holds (the history's largest ``seq``: one lookup)."""
    row = conn.execute("SELECT max(seq) FROM resource_history").fetchone()
    return int(row[0] or 0)


def defer_indexes(conn: sqlite3.Connection, expected: int, minimum: int) -> bool:
    """Drop the secondary indexes of the index tables and the FTS5 insert trigger when
    ``expected`` resources are at least ``minimum`` and at least as many versions as
    the store holds. An empty store loses every secondary index; a non-empty one keeps
    the ``*_owner`` indexes, which replacing a stored resource's rows needs.

    Runs in its own transaction on ``conn`` (autocommit mode, not in a transaction).

    Returns:
        Whether anything was deferred (then :func:`restore_indexes` must follow).
    """
    if expected < max(1, minimum):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM job_state WHERE name = ?", (MARKER,)).fetchone():
            conn.execute("ROLLBACK")  # another load is deferring (or died): leave it be
            return False
        stored = stored_versions(conn)
        if expected < stored:
            conn.execute("ROLLBACK")
            return False
        marks = ", ".join("?" * len(_TABLES))
        found = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND"
            f" ((type = 'index' AND tbl_name IN ({marks})) OR (type = 'trigger' AND name = ?))"
            " ORDER BY type, name",
            (*_TABLES, _TRIGGER),
        ).fetchall()
        dropped = [
            (kind, name, sql)
            for kind, name, sql in found
            if kind == "trigger"
            or (name not in NAMED_INDEXES and (stored == 0 or not name.endswith("_owner")))
        ]
        conn.execute(
            "INSERT INTO job_state (name, state) VALUES (?, ?)",
            (MARKER, orjson.dumps(dropped).decode()),
        )
        for kind, name, _ in dropped:
            conn.execute(f'DROP {kind.upper()} "{name}"')
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


def restore_indexes(conn: sqlite3.Connection) -> bool:
    """Recreate what :func:`defer_indexes` dropped and rebuild the FTS5 index, in one
    transaction on ``conn`` (autocommit mode) that also deletes the record.

    Returns:
        Whether a record was found (False: nothing was deferred).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT state FROM job_state WHERE name = ?", (MARKER,)).fetchone()
        if row is None:
            conn.execute("ROLLBACK")
            return False
        dropped: list[list[str]] = orjson.loads(row[0])
        for kind, _, sql in dropped:
            if kind == "index":  # on sorted data: far cheaper than row-by-row inserts
                conn.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        if any(kind == "trigger" for kind, _, _ in dropped):
            conn.execute("INSERT INTO text_fts (text_fts) VALUES ('rebuild')")
            for kind, _, sql in dropped:
                if kind == "trigger":
                    conn.execute(sql.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1))
        conn.execute("DELETE FROM job_state WHERE name = ?", (MARKER,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True
