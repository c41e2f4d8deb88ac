"""Bulk paths: ``Transaction.put_many`` (import) and ``Repository.iter_current`` (export)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import orjson
import pytest

from cmio.store import (
    InvalidRequestError,
    Repository,
    SearchClause,
    SearchQuery,
    StoredResource,
    Transaction,
)

PutMany = Callable[[Transaction, Sequence[dict[str, Any]]], list[StoredResource]]


def native(tx: Transaction, resources: Sequence[dict[str, Any]]) -> list[StoredResource]:
    return tx.put_many(resources)


def generic(tx: Transaction, resources: Sequence[dict[str, Any]]) -> list[StoredResource]:
    """The contract's default implementation, run against the backend's primitives."""
    return Transaction.put_many(tx, resources)


def batch(n: int, *, value: str = "v", start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Patient",
            "id": f"p{i}",
            "identifier": [{"system": "urn:s", "value": f"{value}{i}"}],
            "active": True,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture(params=[native, generic], ids=["native", "generic"])
def put_many(request: pytest.FixtureRequest) -> PutMany:
    fn: PutMany = request.param
    return fn


def test_put_many_creates_and_is_idempotent(repo: Repository, put_many: PutMany) -> None:
    first = batch(600)
    with repo.transaction() as tx:
        out = put_many(tx, first)
    assert [s.version for s in out] == [1] * 600
    assert all(s.method == "PUT" for s in out)
    assert first[0]["meta"]["versionId"] == "1"
    assert orjson.loads(repo.read("Patient", "p5").data or b"") == first[5]
    again = batch(600)
    again[7]["meta"] = {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00.000Z"}
    with repo.transaction() as tx:
        out2 = put_many(tx, again)
    assert out2 == out
    assert again[7]["meta"] == first[7]["meta"]
    with repo.read_transaction() as tx:
        assert tx.history("Patient").total == 600
    changed = batch(3)
    changed[1]["active"] = False
    with repo.transaction() as tx:
        out3 = put_many(tx, changed)
    assert [s.version for s in out3] == [1, 2, 1]
    assert out3[1].last_updated >= out[1].last_updated
    assert repo.vread("Patient", "p1", 1).data == out[1].data


def test_put_many_index_rows_replaced(repo: Repository, put_many: PutMany) -> None:
    with repo.transaction() as tx:
        put_many(tx, batch(10))
    with repo.transaction() as tx:
        put_many(tx, batch(10, value="w"))

    def find(value: str) -> list[str]:
        q = SearchQuery("Patient", (SearchClause("identifier", (f"urn:s|{value}",)),))
        return [r.id for r in repo.search(q).resources]

    assert find("v3") == [] and find("w3") == ["p3"]


def test_put_many_duplicates_deleted_and_types(repo: Repository, put_many: PutMany) -> None:
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient"}, id="gone")
        tx.delete("Patient", "gone")
    items: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "x", "active": True},
        {"resourceType": "Patient", "id": "x", "active": True},
        {"resourceType": "Patient", "id": "x", "active": False},
        {"resourceType": "Organization", "id": "x", "name": "Acme"},
        {"resourceType": "Patient", "id": "gone"},
    ]
    with repo.transaction() as tx:
        out = put_many(tx, items)
    assert [(s.type, s.version) for s in out] == [
        ("Patient", 1),
        ("Patient", 1),
        ("Patient", 2),
        ("Organization", 1),
        ("Patient", 3),
    ]
    assert orjson.loads(repo.read("Patient", "x").data or b"")["active"] is False
    assert repo.read("Organization", "x").version == 1
    assert repo.read("Patient", "gone").version == 3
    with repo.transaction() as tx:
        assert put_many(tx, []) == []
    with pytest.raises(InvalidRequestError), repo.transaction() as tx:
        put_many(tx, [{"resourceType": "Patient"}])


def test_put_many_rolls_back(repo: Repository) -> None:
    with pytest.raises(RuntimeError), repo.transaction() as tx:
        tx.put_many(batch(50))
        raise RuntimeError("abort import")
    assert repo.search(SearchQuery("Patient")).total == 0
    with repo.read_transaction() as tx:
        assert tx.history().total == 0


def test_iter_current(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.put_many(batch(2500))
        tx.create({"resourceType": "Organization"}, id="org")
        tx.delete("Patient", "p7")
    time.sleep(0.003)
    with repo.transaction() as tx:
        late = tx.create({"resourceType": "Patient"}, id="late")
    everything = list(repo.iter_current())
    assert len(everything) == 2500 + 1 - 1 + 1
    assert all(not r.deleted and r.data for r in everything)
    assert ("Patient", "p7") not in {(r.type, r.id) for r in everything}
    orgs = list(repo.iter_current(["Organization"]))
    assert [(r.type, r.id) for r in orgs] == [("Organization", "org")]
    assert [r.id for r in repo.iter_current(since=late.last_updated)] == ["late"]
    assert list(repo.iter_current([])) == []
    # abandoning an iterator releases its connection
    it = repo.iter_current()
    assert isinstance(it, Generator)
    next(it)
    it.close()
    # writes while iterating (the iterator reads its own snapshot)
    count = 0
    for r in repo.iter_current(["Organization", "Encounter"]):
        with repo.transaction() as tx:
            tx.update({"resourceType": "Organization", "id": r.id, "name": "x"})
        count += 1
    assert count == 1
