"""SQLite bulk-load mode: deferred indexes rebuilt once, crash recovery, the lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing.extract import SearchIndexer
from cmio.model import load_model
from cmio.store import SearchClause, SearchQuery
from cmio.store._sqlitebulk import MARKER, defer_indexes, loading
from cmio.store.sqlite import SqliteRepository


@pytest.fixture(scope="module")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def observations(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": f"c{i % 7}"}]},
            "subject": {"reference": f"Patient/p{i % 5}"},
            "valueQuantity": {"value": i, "unit": "kg", "system": "http://unitsofmeasure.org"},
            "text": {"status": "generated", "div": f"<div>weight word{i % 3}</div>"},
        }
        for i in range(start, start + n)
    ]


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY name"
        ).fetchall()
    return [(str(t), str(n)) for t, n in rows]


def content(path: Path) -> dict[str, list[Any]]:
    """Every index table's rows in insertion order, and FTS matches per word."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO text_fts (text_fts) VALUES ('integrity-check')")
        out: dict[str, list[Any]] = {}
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%_index'"
        ).fetchall():
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        for word in ("weight", "word0", "word2"):
            out[word] = conn.execute(
                "SELECT rowid FROM text_fts WHERE text_fts MATCH ? ORDER BY rowid", (word,)
            ).fetchall()
        return out


def load(repo: SqliteRepository, batches: list[list[dict[str, Any]]], expected: int) -> None:
    with repo.bulk_load(expected):
        for resources in batches:
            with repo.transaction() as tx:
                tx.put_many(resources)


def searched(repo: SqliteRepository, code: str, value: str) -> list[str]:
    with repo.read_transaction() as tx:
        page = tx.search(SearchQuery("Observation", (SearchClause(code, (value,)),)))
    return sorted(r.id for r in page.resources)


def test_deferred_load_rebuilds_the_same_indexes(tmp_path: Path, indexer: SearchIndexer) -> None:
    batches = [observations(40), observations(40, 40)]
    plain = SqliteRepository(tmp_path / "plain.db", indexer=indexer)
    plain.bulk_defer_min = 10**9  # never defers
    load(plain, batches, 80)
    bulk = SqliteRepository(tmp_path / "bulk.db", indexer=indexer)
    seen: list[tuple[str, str]] = []
    with bulk.bulk_load(80):
        seen = schema(bulk.path)
        for resources in batches:
            with bulk.transaction() as tx:
                tx.put_many(resources)
    assert ("trigger", "text_index_ai") not in seen
    assert not any(name.startswith("token_index_") for _, name in seen)
    assert schema(bulk.path) == schema(plain.path)
    assert content(bulk.path) == content(plain.path)
    with bulk.read_transaction() as tx:
        assert tx.job_state(MARKER) is None
    assert searched(bulk, "code", "c3") == searched(plain, "code", "c3") != []
    assert searched(bulk, "_text", "word1") == searched(plain, "_text", "word1") != []
    plain.close()
    bulk.close()


def test_a_store_with_data_keeps_its_owner_indexes(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    load(repo, [observations(10)], 10)
    before = schema(repo.path)
    with repo.bulk_load(5):  # fewer than stored: nothing deferred
        assert schema(repo.path) == before
    changed = observations(30)
    changed[0]["status"] = "amended"  # replaces a stored resource's rows
    with repo.bulk_load(30):
        during = [name for _, name in schema(repo.path)]
        assert "token_index_owner" in during and "token_index_lookup" not in during
        with repo.transaction() as tx:
            tx.put_many(changed)
    assert schema(repo.path) == before
    assert searched(repo, "status", "amended") == ["o0"]
    assert len(searched(repo, "status", "final")) == 29
    repo.close()


def test_searches_that_name_an_index_work_during_a_load(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    """A forward ``_include`` goes through ``_has`` with ``INDEXED BY`` (SQLite refuses a
    statement naming a missing index), so a load into an empty store keeps that index."""
    loader = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    reader = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    query = SearchQuery("Patient", (SearchClause("_has:Observation:subject:_id", ("o1",)),))
    with loader.bulk_load(10**6):
        during = [name for _, name in schema(loader.path)]
        assert "token_index_owner" not in during and "reference_index_owner" in during
        with loader.transaction() as tx:
            tx.put_many([{"resourceType": "Patient", "id": "p1"}, *observations(3)])
        with reader.read_transaction() as tx:
            assert [r.id for r in tx.search(query).resources] == ["p1"]
    with reader.read_transaction() as tx:
        assert [r.id for r in tx.search(query).resources] == ["p1"]
    loader.close()
    reader.close()


def test_a_load_that_died_is_rebuilt_when_the_store_opens(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    reference = SqliteRepository(tmp_path / "ref.db", indexer=indexer)
    reference.bulk_defer_min = 10**9
    load(reference, [observations(30)], 30)
    path = tmp_path / "s.db"
    repo = SqliteRepository(path, indexer=indexer)
    before = schema(path)
    conn = repo._connection()
    with loading(path):
        assert defer_indexes(conn, 30, 1)
        with repo.transaction() as tx:
            tx.put_many(observations(30))
        # the load is running: another repository on the file leaves it alone
        other = SqliteRepository(path, indexer=indexer)
        assert schema(path) != before
        other.close()
    repo.close()  # "dies" without rebuilding
    assert schema(path) != before
    again = SqliteRepository(path, indexer=indexer)
    assert schema(path) == before
    assert content(path) == content(reference.path)
    assert searched(again, "_text", "word2") == searched(reference, "_text", "word2") != []
    with again.read_transaction() as tx:
        assert tx.job_state(MARKER) is None
    again.close()
    reference.close()


def test_an_import_that_fails_still_restores_the_indexes(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    before = schema(repo.path)
    with pytest.raises(RuntimeError), repo.bulk_load(100):
        with repo.transaction() as tx:
            tx.put_many(observations(20))
        raise RuntimeError("boom")
    assert schema(repo.path) == before
    assert len(searched(repo, "status", "final")) == 20
    repo.close()
