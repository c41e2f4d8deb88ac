"""SQLite full-text rows fed to FTS5 once per write transaction (``cmio.store._sqlitefts``).

Every check compares the FTS5 index with ``text_index`` exactly: for every word of every
body, the documents FTS5 matches are the rows whose body holds the word.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing.extract import SearchIndexer
from cmio.model import load_model
from cmio.store import SearchClause, SearchQuery
from cmio.store.migrations import latest
from cmio.store.sqlite import SqliteRepository


@pytest.fixture(scope="module")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def note(i: int, word: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": f"c{i}"}]},
        "text": {"status": "generated", "div": f"<div>{word} item{i}</div>"},
    }


def consistent(path: Path) -> int:
    """Assert FTS5 matches exactly the ``text_index`` rows of each word; the row count."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO text_fts (text_fts) VALUES ('integrity-check')")
        rows = conn.execute("SELECT doc, body FROM text_index").fetchall()
        words: dict[str, set[int]] = {}
        for doc, body in rows:
            for word in body.split():
                words.setdefault(word, set()).add(doc)
        for word, docs in words.items():
            found = conn.execute(
                "SELECT rowid FROM text_fts WHERE text_fts MATCH ?", (f'"{word}"',)
            ).fetchall()
            assert {r[0] for r in found} == docs, word
        assert not conn.execute("SELECT 1 FROM text_feed").fetchall()  # no mark committed
    return len(rows)


def text_ids(repo: SqliteRepository, word: str) -> list[str]:
    query = SearchQuery("Observation", (SearchClause("_text", (word,)),), count=100)
    with repo.read_transaction() as tx:
        return sorted(r.id for r in tx.search(query).resources)


def test_rows_are_fed_at_commit_and_before_reads(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        for i in range(5):
            tx.create(note(i, "alpha"), id=f"o{i}")
        # a search in the same transaction sees the rows not yet fed
        page = tx.search(SearchQuery("Observation", (SearchClause("_text", ("alpha",)),)))
        assert sorted(r.id for r in page.resources) == [f"o{i}" for i in range(5)]
        tx.create(note(5, "alpha"), id="o5")
        # an update in the same transaction deletes rows that wait to be fed
        tx.update(note(5, "beta"))
        tx.create(note(6, "beta"), id="o6")
    assert text_ids(repo, "alpha") == [f"o{i}" for i in range(5)]
    assert text_ids(repo, "beta") == ["o5", "o6"]
    assert consistent(repo.path) > 0
    repo.close()


def test_rollbacks_keep_the_index_exact(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        tx.create(note(0, "kept"), id="o0")
    with pytest.raises(RuntimeError), repo.transaction() as tx:
        tx.create(note(1, "lost"), id="o1")
        raise RuntimeError("rolled back")
    with repo.transaction() as tx:
        tx.create(note(2, "kept"), id="o2")  # waits to be fed
        with repo.transaction() as inner:  # a savepoint that feeds it, then rolls back
            inner.create(note(3, "lost"), id="o3")
            inner.update(note(2, "changed"))  # deletes text rows: feeds the backlog first
        with pytest.raises(RuntimeError), repo.transaction() as inner:
            inner.create(note(4, "lost"), id="o4")
            inner.delete("Observation", "o3")  # feeds o2's new rows and o4's
            raise RuntimeError("savepoint rolled back")
        tx.create(note(5, "kept"), id="o5")
    assert text_ids(repo, "kept") == ["o0", "o5"]
    assert text_ids(repo, "changed") == ["o2"]
    assert text_ids(repo, "lost") == ["o3"]
    assert consistent(repo.path) == 8  # _text and _content rows of 4 resources
    repo.close()


def test_bulk_load_rebuilds_instead_of_feeding(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.bulk_load(50):
        with repo.transaction() as tx:
            tx.put_many([note(i, "bulk") for i in range(50)])
        with sqlite3.connect(repo.path) as conn:  # not fed: the rebuild will index them
            assert not conn.execute("SELECT 1 FROM text_fts WHERE text_fts MATCH 'bulk'").fetchall()
    assert len(text_ids(repo, "bulk")) == 50
    with repo.transaction() as tx:  # fed again afterwards
        tx.create(note(99, "bulk"), id="o99")
    assert len(text_ids(repo, "bulk")) == 51
    assert consistent(repo.path) == 102
    repo.close()


OLD_TRIGGER = (  # the insert trigger as cmio created it before the WHEN clause
    "CREATE TRIGGER text_index_ai AFTER INSERT ON text_index BEGIN"
    " INSERT INTO text_fts (rowid, body) VALUES (new.doc, new.body); END"
)


def old_writer_insert(path: Path, ids: list[str], word: str) -> None:
    """Text rows as an older cmio writes them: a plain insert, the trigger feeds FTS5."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN IMMEDIATE")
        for rid in ids:
            conn.execute(
                "INSERT INTO text_index (resource_type, resource_id, param, body)"
                " VALUES ('Observation', ?, '_text', ?)",
                (rid, f"{word} {rid}"),
            )
        conn.execute("COMMIT")


def test_a_store_with_the_old_trigger_is_adopted(tmp_path: Path, indexer: SearchIndexer) -> None:
    path = tmp_path / "old.db"
    SqliteRepository(path, indexer=indexer).close()
    with sqlite3.connect(path, isolation_level=None) as conn:  # as an older cmio left it
        conn.execute("DROP TRIGGER text_index_ai")
        conn.execute("DROP TABLE text_feed")
        conn.execute(OLD_TRIGGER)
    old_writer_insert(path, ["x1", "x2"], "older")
    repo = SqliteRepository(path, indexer=indexer)
    with sqlite3.connect(path) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'text_index_ai'").fetchone()
        assert "text_feed" in sql[0]
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == latest("sqlite")
    with repo.transaction() as tx:
        tx.create(note(7, "older"), id="o7")
    old_writer_insert(path, ["x3"], "older")  # an older cmio still writes correctly
    assert text_ids(repo, "older") == ["o7"]  # (the x rows are not Observations' own)
    assert consistent(path) == 5
    repo.close()


def test_the_old_trigger_put_back_feeds_alone(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with sqlite3.connect(repo.path, isolation_level=None) as conn:
        # e.g. an older cmio's bulk load restoring the trigger it recorded
        conn.execute("DROP TRIGGER text_index_ai")
        conn.execute(OLD_TRIGGER)
    with repo.transaction() as tx:  # the trigger feeds: no mark, no second insert
        for i in range(3):
            tx.create(note(i, "again"), id=f"o{i}")
    assert text_ids(repo, "again") == ["o0", "o1", "o2"]
    assert consistent(repo.path) == 6
    repo.close()


def test_a_new_store_is_created_with_the_feeding_trigger(tmp_path: Path) -> None:
    from cmio.indexing.tables import TEXT_INSERT_TRIGGER, ddl

    assert TEXT_INSERT_TRIGGER in ddl("sqlite")  # one definition: no rewrite on first open
    with sqlite3.connect(":memory:") as conn:
        for statement in ddl("sqlite"):
            conn.execute(statement)
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'text_index_ai'").fetchone()
    assert "text_feed" in sql[0]


def test_a_transaction_sqlite_rolled_back_leaves_no_mark(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    from cmio.store.base import StoreError

    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with pytest.raises(StoreError), repo.transaction() as tx:
        tx.create(note(0, "gone"), id="o0")  # marks where its text rows start
        with repo.transaction() as inner:
            inner.create(note(1, "gone"), id="o1")
            # as SQLite does itself on SQLITE_FULL or IOERR inside a statement
            repo._connection().execute("ROLLBACK")
    # the next transaction starts without the dead transaction's mark
    with repo.transaction() as tx:
        tx.create(note(2, "kept"), id="o2")
    assert text_ids(repo, "gone") == []
    assert text_ids(repo, "kept") == ["o2"]
    assert consistent(repo.path) == 2
    repo.close()
