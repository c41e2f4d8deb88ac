"""Each version's bytes are stored once: current data in ``resource``, older ones in history."""

from __future__ import annotations

import sqlite3

import orjson

from cmio.store import Repository
from cmio.store.sqlite import SqliteRepository


def _gender(repo: Repository, version: int) -> str:
    data = repo.vread("Patient", "p1", version).data
    assert data is not None
    return str(orjson.loads(data)["gender"])


def test_every_version_readable_after_updates_and_delete(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient", "gender": "male"}, id="p1")
    for gender in ("female", "other"):
        with repo.transaction() as tx:
            tx.update({"resourceType": "Patient", "id": "p1", "gender": gender})
    assert [_gender(repo, v) for v in (1, 2, 3)] == ["male", "female", "other"]
    with repo.transaction() as tx:
        tx.delete("Patient", "p1")
        page = tx.history("Patient", "p1")
    assert _gender(repo, 3) == "other"
    bodies = [orjson.loads(e.data)["gender"] if e.data else None for e in page.entries]
    assert bodies == [None, "other", "female", "male"]


def test_put_many_keeps_versions_superseded_in_the_same_batch(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.put_many([{"resourceType": "Patient", "id": "p1", "gender": "male"}])
    with repo.transaction() as tx:
        tx.put_many(
            [
                {"resourceType": "Patient", "id": "p1", "gender": "female"},
                {"resourceType": "Patient", "id": "p1", "gender": "other"},
            ]
        )
    assert [_gender(repo, v) for v in (1, 2, 3)] == ["male", "female", "other"]
    assert orjson.loads(repo.read("Patient", "p1").data or b"{}")["gender"] == "other"


def test_sqlite_history_holds_no_copy_of_current_data(tmp_path: object) -> None:
    path = f"{tmp_path}/w.db"
    repo = SqliteRepository(path)
    try:
        with repo.transaction() as tx:
            tx.put_many([{"resourceType": "Patient", "id": f"p{i}"} for i in range(10)])
            tx.create({"resourceType": "Patient"}, id="single")
            tx.update({"resourceType": "Patient", "id": "single", "active": True})
    finally:
        repo.close()
    with sqlite3.connect(path) as conn:
        copies = conn.execute(
            "SELECT COUNT(*) FROM resource_history WHERE data IS NOT NULL"
        ).fetchone()[0]
    conn.close()
    assert copies == 1  # only version 1 of "single", superseded by its update
