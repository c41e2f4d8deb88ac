"""Repository contract tests: CRUD, versions, history, transactions (both backends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.store import (
    ConflictError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
    Repository,
    SearchClause,
    SearchQuery,
    StoredResource,
    StoreError,
    Transaction,
    VersionConflictError,
)
from cmio.store._sqlbase import SqlTransaction
from cmio.store.sqlite import SqliteRepository

NPI = "http://hl7.org/fhir/sid/us-npi"


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


def tick() -> None:
    """Sleep past the millisecond so consecutive writes get distinct lastUpdated."""
    time.sleep(0.003)


def body(stored: StoredResource) -> dict[str, Any]:
    assert stored.data is not None
    result: dict[str, Any] = orjson.loads(stored.data)
    return result


def count_rows(repo: Repository, table: str) -> int:
    with repo.read_transaction() as tx:
        assert isinstance(tx, SqlTransaction)
        row = tx._fetchone(f"SELECT COUNT(*) FROM {table}", ())
        assert row is not None
        return int(row[0])


def test_create_assigns_id_version_and_meta(repo: Repository) -> None:
    res = patient(name=[{"family": "Doe"}])
    with repo.transaction() as tx:
        stored = tx.create(res)
    assert stored.type == "Patient" and stored.version == 1 and not stored.deleted
    assert stored.method == "POST"
    assert len(stored.id) == 36 and res["id"] == stored.id
    assert res["meta"] == {"versionId": "1", "lastUpdated": stored.last_updated}
    assert body(stored) == res
    assert stored.last_updated.endswith("Z") and len(stored.last_updated) == 24
    assert list(body(stored))[:3] == ["resourceType", "id", "meta"]
    again = repo.read("Patient", stored.id)
    assert again.data == stored.data and again.version == 1


def test_create_with_given_id_and_conflicts(repo: Repository) -> None:
    with repo.transaction() as tx:
        stored = tx.create(patient(), id="abc-1.2")
    assert stored.id == "abc-1.2"
    with pytest.raises(ConflictError), repo.transaction() as tx:
        tx.create(patient(), id="abc-1.2")
    with repo.transaction() as tx:
        tx.delete("Patient", "abc-1.2")
    with pytest.raises(ConflictError), repo.transaction() as tx:
        tx.create(patient(), id="abc-1.2")
    for bad in ("", "a" * 65, "a/b", "a b", "é"):
        with pytest.raises(InvalidRequestError), repo.transaction() as tx:
            tx.create(patient(), id=bad)
    with pytest.raises(InvalidRequestError), repo.transaction() as tx:
        tx.create({"name": "no type"})


def test_read_vread_and_missing(repo: Repository) -> None:
    with repo.transaction() as tx:
        v1 = tx.create(patient(active=False), id="p")
        v2, created = tx.update(patient(id="p", active=True))
    assert not created and v2.version == 2 and v2.method == "PUT"
    assert body(repo.read("Patient", "p"))["active"] is True
    old = repo.vread("Patient", "p", 1)
    assert old.data == v1.data and old.method == "POST"
    assert repo.vread("Patient", "p", 2).data == v2.data
    with pytest.raises(NotFoundError):
        repo.vread("Patient", "p", 3)
    with pytest.raises(NotFoundError):
        repo.read("Patient", "nope")
    with pytest.raises(NotFoundError):
        repo.read("Observation", "p")
    with repo.read_transaction() as tx:
        assert tx.current("Patient", "nope") is None
        cur = tx.current("Patient", "p")
        assert cur is not None and cur.version == 2


def test_update_as_create_and_if_match(repo: Repository) -> None:
    with repo.transaction() as tx:
        stored, created = tx.update(patient(id="u1"), method="PUT")
    assert created and stored.version == 1
    with repo.transaction() as tx:
        stored, created = tx.update(patient(id="u1", active=True), if_match=1)
    assert not created and stored.version == 2
    with pytest.raises(VersionConflictError), repo.transaction() as tx:
        tx.update(patient(id="u1", active=False), if_match=1)
    with pytest.raises(VersionConflictError), repo.transaction() as tx:
        tx.update(patient(id="absent"), if_match=1)
    assert repo.read("Patient", "u1").version == 2
    with pytest.raises(NotFoundError):
        repo.read("Patient", "absent")
    with pytest.raises(InvalidRequestError), repo.transaction() as tx:
        tx.update(patient())
    with repo.transaction() as tx:
        patched, _ = tx.update(patient(id="u1", active=False), method="PATCH")
    assert patched.method == "PATCH" and repo.vread("Patient", "u1", 3).method == "PATCH"


def test_delete_writes_tombstone(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(patient(identifier=[{"system": NPI, "value": "1"}]), id="d")
    tick()
    with repo.transaction() as tx:
        tomb = tx.delete("Patient", "d")
        assert tomb is not None
        assert tx.delete("Patient", "d") is None
        assert tx.delete("Patient", "never") is None
    assert tomb.deleted and tomb.version == 2 and tomb.data is None and tomb.method == "DELETE"
    with pytest.raises(GoneError):
        repo.read("Patient", "d")
    assert repo.vread("Patient", "d", 1).version == 1
    with pytest.raises(GoneError):
        repo.vread("Patient", "d", 2)
    with repo.read_transaction() as tx:
        cur = tx.current("Patient", "d")
        assert cur is not None and cur.deleted and cur.version == 2
    page = repo.search(SearchQuery("Patient", (SearchClause("identifier", (f"{NPI}|1",)),)))
    assert page.resources == [] and page.total == 0
    assert count_rows(repo, "token_index") == 0


def test_recreate_after_delete_continues_versions(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(patient(), id="r")
        tx.delete("Patient", "r")
        stored, created = tx.update(patient(id="r", active=True))
    assert created and stored.version == 3
    assert body(repo.read("Patient", "r"))["meta"]["versionId"] == "3"


def _history_fixture(repo: Repository) -> dict[str, StoredResource]:
    out: dict[str, StoredResource] = {}
    with repo.transaction() as tx:
        out["p1"] = tx.create(patient(), id="h")
    tick()
    with repo.transaction() as tx:
        out["o1"] = tx.create({"resourceType": "Organization"}, id="o")
    tick()
    with repo.transaction() as tx:
        out["p2"], _ = tx.update(patient(id="h", active=True))
    tick()
    with repo.transaction() as tx:
        tomb = tx.delete("Patient", "h")
        assert tomb is not None
        out["p3"] = tomb
    return out


def test_history_levels_newest_first(repo: Repository) -> None:
    v = _history_fixture(repo)
    with repo.read_transaction() as tx:
        inst = tx.history("Patient", "h")
        assert [e.version for e in inst.entries] == [3, 2, 1] and inst.total == 3
        assert [e.method for e in inst.entries] == ["DELETE", "PUT", "POST"]
        assert inst.entries[0].deleted and inst.entries[0].data is None
        assert inst.entries[2].data == v["p1"].data
        typ = tx.history("Patient")
        assert [e.version for e in typ.entries] == [3, 2, 1] and typ.total == 3
        system = tx.history()
        keys = [(e.type, e.version) for e in system.entries]
        assert keys == [("Patient", 3), ("Patient", 2), ("Organization", 1), ("Patient", 1)]
        assert system.total == 4
        page = tx.history(count=2, offset=1)
        assert [(e.type, e.version) for e in page.entries] == keys[1:3] and page.total == 4
        assert tx.history(count=0).entries == [] and tx.history(count=0).total == 4
        assert tx.history("Patient", "missing").total == 0
        assert tx.history("Encounter").entries == []


def test_history_since_and_at(repo: Repository) -> None:
    v = _history_fixture(repo)
    with repo.read_transaction() as tx:
        since = tx.history(since=v["o1"].last_updated)
        assert [(e.type, e.version) for e in since.entries] == [
            ("Patient", 3),
            ("Patient", 2),
            ("Organization", 1),
        ]
        assert since.total == 3
        assert tx.history("Patient", "h", since=v["p3"].last_updated).total == 1
        assert tx.history(since="2999-01-01").total == 0
        assert tx.history(since="2000").total == 4
        # at: the version current at that instant, per resource
        at_p1 = tx.history("Patient", "h", at=v["p1"].last_updated)
        assert [e.version for e in at_p1.entries] == [1]
        at_o1 = tx.history(at=v["o1"].last_updated)
        assert sorted((e.type, e.version) for e in at_o1.entries) == [
            ("Organization", 1),
            ("Patient", 1),
        ]
        at_p2 = tx.history("Patient", at=v["p2"].last_updated)
        assert [e.version for e in at_p2.entries] == [2]
        at_end = tx.history(at=v["p3"].last_updated)
        assert sorted((e.type, e.version) for e in at_end.entries) == [
            ("Organization", 1),
            ("Patient", 3),
        ]
        assert tx.history(at="2000-01-01T00:00:00Z").total == 0
        # coarse precision: every version current at some point of the day
        day = v["p1"].last_updated[:10]
        if v["p3"].last_updated[:10] == day:
            assert tx.history("Patient", "h", at=day).total == 3
        with pytest.raises(InvalidRequestError):
            tx.history(since="yesterday")


def test_rollback_leaves_nothing(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(patient(identifier=[{"system": NPI, "value": "keep"}]), id="keep")
    with pytest.raises(RuntimeError), repo.transaction() as tx:
        tx.create(patient(identifier=[{"system": NPI, "value": "gone"}]), id="rb")
        tx.update(patient(id="keep", identifier=[{"system": NPI, "value": "changed"}]))
        tx.delete("Patient", "keep")
        raise RuntimeError("boom")
    with pytest.raises(NotFoundError):
        repo.read("Patient", "rb")
    assert repo.read("Patient", "keep").version == 1
    with repo.read_transaction() as tx:
        assert tx.history().total == 1
    assert count_rows(repo, "resource") == 1
    assert count_rows(repo, "resource_history") == 1
    assert count_rows(repo, "token_index") == 1
    keep = repo.search(SearchQuery("Patient", (SearchClause("identifier", ("keep",)),)))
    assert [r.id for r in keep.resources] == ["keep"]


def test_transaction_reads_its_own_writes(repo: Repository) -> None:
    with repo.transaction() as tx:
        a = tx.create(patient(identifier=[{"system": NPI, "value": "own"}]))
        assert tx.read("Patient", a.id).data == a.data
        found = tx.search(SearchQuery("Patient", (SearchClause("identifier", (f"{NPI}|own",)),)))
        assert [r.id for r in found.resources] == [a.id] and found.total == 1
        tx.update(patient(id=a.id, active=True))
        assert tx.vread("Patient", a.id, 2).version == 2
        assert tx.history("Patient", a.id).total == 2


def test_read_only_and_finished_transactions(repo: Repository) -> None:
    with pytest.raises(StoreError), repo.read_transaction() as tx:
        tx.create(patient())
    with repo.transaction() as tx:
        tx.create(patient(), id="x")
    leaked: Transaction = tx
    with pytest.raises(StoreError):
        leaked.read("Patient", "x")


def test_reopen_keeps_data(repo_factory: Callable[..., Repository]) -> None:
    name = f"reopen-{time.monotonic_ns()}"
    first = repo_factory(name)
    with first.transaction() as tx:
        stored = tx.create(patient(identifier=[{"value": "v"}]), id="kept")
    first.close()
    second = repo_factory(name)
    try:
        assert second.read("Patient", "kept").data == stored.data
        with second.transaction() as tx:
            assert tx.update(patient(id="kept"))[0].version == 2
    finally:
        second.close()


def test_store_errors_are_store_errors() -> None:
    for exc in (NotFoundError, GoneError, VersionConflictError, ConflictError):
        assert issubclass(exc, StoreError)
    assert issubclass(InvalidRequestError, StoreError)


def test_sqlite_nested_transactions(tmp_path: Path) -> None:
    repo = SqliteRepository(tmp_path / "nested.db")
    try:
        _nested(repo)
    finally:
        repo.close()


def _nested(repo: Repository) -> None:
    # one thread, one connection: an inner transaction is a savepoint of the outer
    with repo.transaction() as outer:
        outer.create(patient(), id="outer")
        assert repo.search(SearchQuery("Patient")).total == 1  # nested read sees outer writes
        with pytest.raises(RuntimeError), repo.transaction() as inner:
            inner.create(patient(), id="inner")
            raise RuntimeError("undo the inner part only")
        with repo.transaction() as inner:
            inner.create(patient(), id="kept")
    assert sorted(r.id for r in repo.search(SearchQuery("Patient")).resources) == [
        "kept",
        "outer",
    ]
