"""SQLite full-text rows fed to FTS5 once per write transaction, not once per row.

FTS5 writes its pending terms to a new on-disk segment whenever a statement opens a
statement savepoint (``xSavepoint``, https://www.sqlite.org/vtab.html#xsavepoint), so the
``AFTER INSERT`` trigger on ``text_index`` made a segment (and its share of automerge
work) for every row: ~55 µs per row for single creates and ~165 µs for an HL7 ORU's rows
applied under a savepoint per message. Instead, the rows a write transaction inserts into
``text_index`` (an ``INTEGER PRIMARY KEY`` ``doc``, so new rows take ``doc`` above the
largest) are added to the external-content FTS5 table in one ``INSERT ... SELECT`` just
before the transaction commits (https://www.sqlite.org/fts5.html#external_content_tables),
or earlier when a statement of the same transaction reads or deletes full-text rows.

The trigger stays, so a store remains correct for every writer and for older cmio
releases (no schema version change): it fires unless the writing transaction has put its
mark in ``text_feed``, a one-row table no transaction commits with a row in it
(:func:`adopt` gives a store's trigger that ``WHEN`` clause when the repository opens it).
A writer uses the mark only when the trigger it finds has the clause (or there is no
trigger: a bulk load deferred the index to a rebuild, :mod:`cmio.store._sqlitebulk`).

An update whose ``_text``/``_content`` body changed rewrites its row in place
(:meth:`Backlog.rewrite`, same ``doc``) instead of a delete, whose ``AFTER DELETE`` trigger
would flush FTS5 once per statement: the row's old terms are removed from FTS5 (the
``'delete'`` command with the old body, https://www.sqlite.org/fts5.html#the_delete_command)
and its new body added at the same feed.

Invariant, per connection: ``text_fts`` holds exactly the ``text_index`` rows with ``doc``
at most :attr:`Backlog.mark` (every row when the mark is None), each with its current body
except the rows in :attr:`Backlog.rewritten`, indexed with the old body kept there; and
``text_feed`` holds the mark while it is set; a rollback to a savepoint restores all three
as they were (:meth:`Backlog.state`, :meth:`Backlog.drop`).
"""

from __future__ import annotations

import json
import sqlite3

from cmio.indexing.tables import TEXT_FEED_TABLE, TEXT_INSERT_TRIGGER
from cmio.store._sqlrows import INSERT_INDEX

__all__ = ["FEED", "INSERT_TEXT", "TRIGGER", "Backlog", "FullText", "State", "adopt"]

#: the ``text_index`` insert whose rows wait for :meth:`Backlog.feed`
INSERT_TEXT = INSERT_INDEX["text_index"]
#: adds the rows above a mark to the FTS5 index
FEED = "INSERT INTO text_fts (rowid, body) SELECT doc, body FROM text_index WHERE doc > ?"
#: ... and the rewritten rows (``doc`` in a JSON array) with their new bodies
_FEED_REWRITTEN = FEED + " OR doc IN (SELECT value FROM json_each(?))"
#: removes a rewritten row's old terms (``doc``, old body), bound as they are: through
#: JSON, SQLite's text would end at a NUL and leave the later words indexed
_UNFEED = "INSERT INTO text_fts (text_fts, rowid, body) VALUES ('delete', ?, ?)"
_REWRITE = "UPDATE text_index SET body = ? WHERE doc = ?"
#: a backlog's state at a savepoint: the mark, the rewritten rows and how many of them
#: there were (:meth:`Backlog.state`)
State = tuple[int | None, dict[int, str], int]
#: the insert trigger: idle while a transaction feeds its rows itself (one definition,
#: the schema's: new stores are created with it, :func:`adopt` upgrades older ones)
TRIGGER = TEXT_INSERT_TRIGGER
_TABLE = TEXT_FEED_TABLE
_TRIGGER_SQL = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'text_index_ai'"
_TOP = "SELECT coalesce(max(doc), 0) FROM text_index"


def _idle_trigger(sql: str | None) -> bool:
    """Whether an insert trigger of that SQL (None: none) leaves a marked transaction alone."""
    return sql is None or "text_feed" in sql


def adopt(conn: sqlite3.Connection) -> None:
    """Give the store's insert trigger its ``WHEN`` clause (and create ``text_feed``),
    and feed rows a mark left behind; a no-op read when there is nothing to do.

    ``conn`` is in autocommit mode; the change is one ``BEGIN IMMEDIATE`` transaction.
    """
    row = conn.execute(_TRIGGER_SQL).fetchone()
    feed = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'text_feed'").fetchone()
    if (
        feed is not None
        and _idle_trigger(None if row is None else row[0])
        and conn.execute("SELECT 1 FROM text_feed").fetchone() is None
    ):
        return
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'text_fts'").fetchone() is None:
        return  # no full-text index (an older schema being migrated elsewhere)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_TABLE)
        left = conn.execute("SELECT min(mark) FROM text_feed").fetchone()[0]
        if left is not None:  # committed with a mark (never by this module): feed them
            conn.execute("DELETE FROM text_feed")
            conn.execute(FEED, (left,))
        row = conn.execute(_TRIGGER_SQL).fetchone()
        if row is not None and not _idle_trigger(row[0]):
            conn.execute("DROP TRIGGER text_index_ai")
            conn.execute(TRIGGER)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class FullText:
    """A repository's full-text state shared by its connections.

    Attributes:
        paused: a bulk load deferred the FTS5 index to a ``'rebuild'`` at its end
            (:mod:`cmio.store._sqlitebulk`): rows are not fed meanwhile.
    """

    def __init__(self) -> None:
        self.paused = False


class Backlog:
    """One connection's ``text_index`` rows not yet in ``text_fts``: ``doc > mark``."""

    def __init__(self, full_text: FullText) -> None:
        self.full_text = full_text
        #: the largest ``doc`` in the FTS5 index before this transaction's new rows
        self.mark: int | None = None
        #: rows at most ``mark`` rewritten in place since: ``doc`` -> the body FTS5 holds
        self.rewritten: dict[int, str] = {}

    def before_insert(self, cur: sqlite3.Cursor) -> None:
        """Before a ``text_index`` insert: mark where the new rows start, unless the
        store's trigger feeds every row (one it was not given the ``WHEN`` clause)."""
        if self.mark is not None:
            return
        row = cur.execute(_TRIGGER_SQL).fetchone()
        if not _idle_trigger(None if row is None else row[0]):
            return
        mark = int(cur.execute(_TOP).fetchone()[0])
        cur.execute("INSERT INTO text_feed (mark) VALUES (?)", (mark,))
        self.mark = mark

    def rewrite(self, cur: sqlite3.Cursor, doc: int, old: str, body: str) -> bool:
        """Give row ``doc`` (whose current body is ``old``) the ``body``, its FTS5 terms
        changed at the feed; False (nothing done) unless this connection feeds FTS5 itself
        (the caller then deletes and inserts the row)."""
        self.before_insert(cur)
        if self.mark is None:
            return False
        cur.execute(_REWRITE, (body, doc))
        if doc <= self.mark:  # indexed: its terms (the first body) leave at the feed
            self.rewritten.setdefault(doc, old)
        return True

    def state(self) -> State:
        """What :meth:`drop` restores after a rollback to a savepoint taken now (a feed
        replaces :attr:`rewritten` rather than emptying it, so the dict kept here still
        holds the rows a rolled-back feed had taken)."""
        return self.mark, self.rewritten, len(self.rewritten)

    def before(self, cur: sqlite3.Cursor, sql: str) -> None:
        """Feed the backlog first when ``sql`` names a full-text table."""
        if self.mark is not None and "text_" in sql:
            self.feed(cur)

    def feed(self, cur: sqlite3.Cursor) -> None:
        """Add the waiting rows to ``text_fts`` (in the connection's open transaction)."""
        if self.mark is None:
            return
        cur.execute("DELETE FROM text_feed")
        if not self.full_text.paused:
            if self.rewritten:
                cur.executemany(_UNFEED, self.rewritten.items())
                cur.execute(_FEED_REWRITTEN, (self.mark, json.dumps(list(self.rewritten))))
            else:
                cur.execute(FEED, (self.mark,))
        self.mark = None
        self.rewritten = {}

    def drop(self, state: State | None = None) -> None:
        """After a rollback: the state as it was when the rolled-back transaction or
        savepoint began (:meth:`state`; None for a whole transaction: its rows are gone)."""
        if state is None:
            self.mark, self.rewritten = None, {}
            return
        self.mark, rewritten, kept = state
        self.rewritten = dict(list(rewritten.items())[:kept])
