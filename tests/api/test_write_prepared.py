"""Writes prepared before the write lock (cmio.api.ops.write.prepare_write)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.ops.write import PreparedRequest, prepare_write
from cmio.api.router import FhirRouter
from cmio.api.writer import GroupCommitWriter
from cmio.indexing.extract import SearchIndexer
from cmio.model import Model

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"family": "Prepareson", "given": ["Ada"]}],
    "gender": "female",
    "birthDate": "1970-02-03",
    "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>Ada</div>"},
}


@pytest.fixture()
def env(tmp_path: Path, model: Model) -> Env:
    return build_env(f"sqlite:///{tmp_path / 'cmio.db'}", Settings(), model)


def _request(method: str, path: str, body: Any, **headers: str) -> FhirRequest:
    return FhirRequest(
        method,
        path,
        headers={"content-type": "application/fhir+json", **headers},
        body=json.dumps(body).encode(),
    )


def _search(env: Env, query: str) -> list[str]:
    response = FhirRouter(env).handle(
        FhirRequest(
            "GET",
            "Patient",
            query=[(k, v) for k, _, v in (p.partition("=") for p in query.split("&"))],
        )
    )
    assert response.status == 200
    return [e["resource"]["id"] for e in json.loads(response.body).get("entry", [])]


def _normal(rows: Any) -> dict[str, set[tuple[Any, ...]]]:
    out = {t: set(r) for t, r in rows.items() if t != "text_index"}
    out["text_index"] = {(p, frozenset(body.split())) for p, body in rows.get("text_index", [])}
    return out


def _table_rows(env: Env, resource: dict[str, Any]) -> Any:
    indexer = env.repository.indexer
    assert isinstance(indexer, SearchIndexer)
    return indexer.table_rows(resource)


def test_prepared_create_indexes_like_the_store(env: Env) -> None:
    prepared = prepare_write(env, _request("POST", "Patient", {**PATIENT, "id": "ignored"}))
    assert isinstance(prepared, PreparedRequest) and prepared.prepared is not None
    work = prepared.prepared
    response = FhirRouter(env).handle(prepared)
    assert response.status == 201
    stored = json.loads(response.body)
    assert stored["id"] == work.id != "ignored"
    # the rows computed before the lock are those the store computes from the stored
    # version (full-text bodies as word sets: the stored JSON puts ``id`` first)
    assert _normal(work.rows) == _normal(_table_rows(env, stored))
    assert _search(env, f"_content={stored['id'][:8]}") == [stored["id"]]
    assert _search(env, "_text=ada") == [stored["id"]]
    env.repository.close()


def test_prepared_update_keeps_if_match_inside_the_lock(env: Env) -> None:
    router = FhirRouter(env)
    created = json.loads(router.handle(_request("POST", "Patient", PATIENT)).body)
    rid = created["id"]
    body = {**PATIENT, "id": rid, "gender": "male"}
    stale = prepare_write(env, _request("PUT", f"Patient/{rid}", body, **{"if-match": 'W/"7"'}))
    assert isinstance(stale, PreparedRequest)
    assert router.handle(stale).status == 412
    assert env.repository.read("Patient", rid).version == 1
    fresh = prepare_write(env, _request("PUT", f"Patient/{rid}", body, **{"if-match": 'W/"1"'}))
    assert router.handle(fresh).status == 200
    current = env.repository.read("Patient", rid)
    assert current.version == 2 and json.loads(current.data or b"")["gender"] == "male"
    assert _search(env, "gender=male") == [rid]
    assert _search(env, "gender=female") == []
    env.repository.close()


def test_rejected_bodies_are_not_prepared_and_store_nothing(env: Env) -> None:
    bad = {**PATIENT, "gender": 12}
    request = _request("POST", "Patient", bad)
    assert prepare_write(env, request) is request
    response = FhirRouter(env).handle(request)
    assert response.status == 400
    assert b"gender" in response.body
    mismatch = _request("PUT", "Patient/a", {**PATIENT, "id": "b"})
    assert prepare_write(env, mismatch) is mismatch
    assert FhirRouter(env).handle(mismatch).status == 400
    assert _search(env, "_count=10") == []
    env.repository.close()


def test_writer_prepares_concurrent_creates(env: Env) -> None:
    writer = GroupCommitWriter(FhirRouter(env))

    async def run() -> list[int]:
        requests = [
            _request("POST", "Patient", {**PATIENT, "birthDate": f"19{n:02d}-01-01"})
            for n in range(40)
        ]
        responses = await asyncio.gather(*(writer.submit(r) for r in requests))
        return [r.status for r in responses]

    try:
        assert asyncio.run(run()) == [201] * 40
    finally:
        writer.close()
    assert len(set(_search(env, "family=prepareson&_count=100"))) == 40
    env.repository.close()


def test_writes_arriving_during_preparation_share_the_commit(env: Env) -> None:
    """Requests queued while the writer prepares a batch join that batch's commit."""
    import threading

    arrived, preparing = threading.Event(), threading.Event()
    batches: list[int] = []

    class Watched(GroupCommitWriter):
        def _prepare(self, request: FhirRequest) -> FhirRequest:
            preparing.set()  # the writer has taken the first request into a batch
            arrived.wait(10)  # it waits here until the others are queued
            return super()._prepare(request)

        def _commit(self, batch: list[Any]) -> None:
            batches.append(len(batch))
            super()._commit(batch)

    writer = Watched(FhirRouter(env))
    bodies = [{**PATIENT, "birthDate": f"19{n:02d}-01-01"} for n in range(5)]

    async def run() -> list[int]:
        first = asyncio.ensure_future(writer.submit(_request("POST", "Patient", bodies[0])))
        assert await asyncio.to_thread(preparing.wait, 10)
        rest = [
            asyncio.ensure_future(writer.submit(_request("POST", "Patient", b))) for b in bodies[1:]
        ]
        await asyncio.sleep(0)  # all queued
        arrived.set()
        return [r.status for r in await asyncio.gather(first, *rest)]

    try:
        assert asyncio.run(run()) == [201] * 5
    finally:
        writer.close()
    assert batches == [5]
    assert len(set(_search(env, "family=prepareson&_count=100"))) == 5
    env.repository.close()


@pytest.mark.parametrize("interval", [0.0005, None])
def test_writer_lowers_the_gil_switch_interval(env: Env, interval: float | None) -> None:
    """The lock holder gets the GIL back within ``switch_interval`` (None: untouched)."""
    import sys

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    writer = GroupCommitWriter(FhirRouter(env), switch_interval=interval)
    try:
        response = asyncio.run(writer.submit(_request("POST", "Patient", PATIENT)))
        assert response.status == 201
        assert sys.getswitchinterval() == pytest.approx(0.005 if interval is None else interval)
    finally:
        writer.close()
        sys.setswitchinterval(before)
        env.repository.close()
