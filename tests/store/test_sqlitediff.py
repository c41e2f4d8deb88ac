"""SQLite updates by difference (``cmio.store._sqlitediff``): only changed index rows move.

Each check compares the stored index rows with what a delete and insert of every row
leaves (the new version's rows as the indexer extracts them), and FTS5 with
``text_index`` exactly (``consistent`` from the full-text tests).
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cmio.indexing.extract import SearchIndexer
from cmio.indexing.tables import INDEX_TABLES
from cmio.model import load_model
from cmio.store import _sqlitediff
from cmio.store.sqlite import SqliteRepository
from tests.store.test_sqlitefts import consistent, text_ids


@pytest.fixture(scope="module")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def obs(i: int, word: str, status: str = "final", **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": f"c{i}"}]},
        "identifier": [{"system": "urn:x", "value": "a"}, {"system": "urn:x", "value": "a"}],
        "text": {"status": "generated", "div": f"<div>{word} item{i}</div>"},
        **more,
    }


def stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every index table's rows (without rowid and ``doc``), sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(path) as conn:
        for table in INDEX_TABLES:
            cols = ["resource_type", "resource_id", "param", *(c[0] for c in table.columns)]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table.name}").fetchall()
            out[table.name] = sorted(rows, key=repr)
    return out


def expected(indexer: SearchIndexer, resources: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows a delete and insert of everything leaves: the indexer's rows, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in INDEX_TABLES}
    for resource in resources:
        for table, rows in indexer.table_rows(resource).items():
            out[table] += [(resource["resourceType"], resource["id"], *row) for row in rows]
    with sqlite3.connect(":memory:") as conn:  # as the columns' affinities store them
        for table in INDEX_TABLES:
            cols = ", ".join(f"{c[0]} {c[1]}" for c in table.columns)
            conn.execute(f"CREATE TABLE {table.name} (a TEXT, b TEXT, c TEXT, {cols})")
            marks = ", ".join("?" * (3 + len(table.columns)))
            conn.executemany(f"INSERT INTO {table.name} VALUES ({marks})", out[table.name])
            rows = conn.execute(f"SELECT * FROM {table.name}").fetchall()
            out[table.name] = sorted(rows, key=repr)
    return out


def tokens(path: Path) -> set[tuple[Any, ...]]:
    """``token_index`` rows with their rowids."""
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT rowid, param, system, value FROM token_index"))


def test_unchanged_rows_stay_and_changed_ones_move(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        tx.create(obs(1, "alpha"), id="o1")
    before = tokens(repo.path)
    with repo.transaction() as tx:
        tx.update(obs(1, "beta", status="amended"))
    new = obs(1, "beta", status="amended")
    assert stored(repo.path) == expected(indexer, [new])
    # the code, identifiers and category rows kept their rowids; only the status moved
    after = tokens(repo.path)
    assert len(before) == len(after) and len(before - after) == 1
    assert text_ids(repo, "beta") == ["o1"] and text_ids(repo, "alpha") == []
    assert consistent(repo.path) == 2
    repo.close()


def test_duplicate_rows_and_removed_tables(tmp_path: Path, indexer: SearchIndexer) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    first = obs(
        2,
        "gamma",
        valueQuantity={
            "value": 5,
            "unit": "mg",
            "system": "http://unitsofmeasure.org",
            "code": "mg",
        },
    )
    with repo.transaction() as tx:
        tx.create(first, id="o2")
    steps: list[dict[str, Any]] = []
    second = copy.deepcopy(first)
    second["identifier"] = second["identifier"][:1]  # one copy of a duplicated row fewer
    del second["valueQuantity"]  # a table's rows all go
    del second["text"]  # the _text row goes
    steps.append(second)
    third = copy.deepcopy(second)
    third["identifier"] *= 3  # copies come back
    third["text"] = {"status": "generated", "div": "<div>delta</div>"}
    steps.append(third)
    for step in steps:
        with repo.transaction() as tx:
            tx.update(step)
        assert stored(repo.path) == expected(indexer, [step])
        consistent(repo.path)
    assert text_ids(repo, "delta") == ["o2"] and text_ids(repo, "gamma") == []
    repo.close()


def test_rewrites_survive_savepoint_rollbacks_after_a_feed(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        for i in range(3):
            tx.create(obs(i, "alpha"), id=f"o{i}")
    with repo.transaction() as tx:
        tx.update(obs(0, "beta"))  # rewritten in place, FTS5 changed at the feed
        tx.update(obs(0, "gamma"))  # twice: FTS5 still holds the first body
        with pytest.raises(RuntimeError), repo.transaction() as inner:
            inner.update(obs(1, "beta"))
            assert text_ids(repo, "beta") == ["o1"]  # a read feeds, inside the savepoint
            raise RuntimeError
        tx.update(obs(2, "gamma"))
    assert text_ids(repo, "alpha") == ["o1"]
    assert text_ids(repo, "gamma") == ["o0", "o2"]
    assert text_ids(repo, "beta") == []
    assert stored(repo.path) == expected(
        indexer, [obs(0, "gamma"), obs(1, "alpha"), obs(2, "gamma")]
    )
    assert consistent(repo.path) == 6
    repo.close()


def test_a_delete_that_misses_replaces_the_table(
    tmp_path: Path, indexer: SearchIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        tx.create(obs(3, "alpha"), id="o3")
    # a delete by values that removes nothing (as if a stored value read back differently)
    missing = {k: v + " AND 0" for k, v in _sqlitediff._DELETE_ROW.items()}
    monkeypatch.setattr(_sqlitediff, "_DELETE_ROW", missing)
    new = obs(3, "alpha", status="amended")
    with repo.transaction() as tx:
        tx.update(new)
    assert stored(repo.path) == expected(indexer, [new])
    repo.close()


def test_the_old_trigger_deletes_and_inserts(tmp_path: Path, indexer: SearchIndexer) -> None:
    from tests.store.test_sqlitefts import OLD_TRIGGER

    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        tx.create(obs(4, "alpha"), id="o4")
    with sqlite3.connect(repo.path, isolation_level=None) as conn:  # an older cmio's
        conn.execute("DROP TRIGGER text_index_ai")
        conn.execute(OLD_TRIGGER)
    with repo.transaction() as tx:  # no feeding here: the text row is deleted and inserted
        tx.update(obs(4, "beta"))
    assert text_ids(repo, "beta") == ["o4"] and text_ids(repo, "alpha") == []
    assert stored(repo.path) == expected(indexer, [obs(4, "beta")])
    assert consistent(repo.path) == 2
    repo.close()


def test_nested_savepoints_of_one_name_roll_back_the_innermost(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    repo = SqliteRepository(tmp_path / "s.db", indexer=indexer)
    with repo.transaction() as tx:
        tx.create(obs(1, "one"), id="o1")
        with repo.transaction() as middle:
            middle.create(obs(2, "two"), id="o2")
            with pytest.raises(RuntimeError), repo.transaction() as inner:
                inner.create(obs(3, "three"), id="o3")
                raise RuntimeError
            with repo.transaction() as inner:
                inner.create(obs(4, "four"), id="o4")
        with pytest.raises(RuntimeError), repo.transaction() as middle:
            middle.create(obs(5, "five"), id="o5")
            with repo.transaction() as inner:
                inner.create(obs(6, "six"), id="o6")
            raise RuntimeError
        tx.create(obs(7, "seven"), id="o7")
    with sqlite3.connect(repo.path) as conn:
        ids = sorted(r[0] for r in conn.execute("SELECT id FROM resource"))
    assert ids == ["o1", "o2", "o4", "o7"]
    assert stored(repo.path) == expected(
        indexer, [obs(i, w) for i, w in [(1, "one"), (2, "two"), (4, "four"), (7, "seven")]]
    )
    assert consistent(repo.path) == 8
    repo.close()
