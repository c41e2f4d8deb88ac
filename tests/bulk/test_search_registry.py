"""Every server process sees the custom SearchParameters a ``$reindex`` published.

Two routers with their own repository, indexer and registry on the same database
stand for two ``cmio serve`` workers (or two hosts on one PostgreSQL database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.bulk.reindex import Reindexer, ReindexState
from cmio.bulk.search_registry import REGISTRY, Published, SearchRegistry
from cmio.indexing import SearchIndexer
from cmio.model import Model
from cmio.search.memory import MemoryIndex
from cmio.store import open_repository
from cmio.store.base import SearchClause, SearchQuery

from .conftest import new_database
from .test_reindex import SEARCH_PARAMETER, _patients

_JSON = {"content-type": "application/fhir+json"}


class Worker:
    """One server process: its own repository, indexer, registry and router."""

    def __init__(self, url: str, model: Model) -> None:
        self.indexer = SearchIndexer(model)
        self.repository = open_repository(url, indexer=self.indexer)
        settings = Settings(validation="off", search_registry_max_age=0)
        self.env = Env(self.repository, model, lambda r: [], settings)
        self.router = FhirRouter(self.env)

    def call(self, method: str, path: str, body: Any = None, **query: str) -> FhirResponse:
        data = b"" if body is None else orjson.dumps(body)
        request = FhirRequest(method, path, list(query.items()), dict(_JSON), data)
        return self.router.handle(request)

    def ids(self, **query: str) -> set[str]:
        response = self.call("GET", "Patient", None, _count="100", **query)
        assert response.status == 200, response.body
        entries = orjson.loads(response.body).get("entry", [])
        return {e["resource"]["id"] for e in entries}

    def reindex(self) -> None:
        assert self.call("POST", "$reindex").status == 202
        self.env.reindexer.wait(60)
        assert self.env.reindexer.error is None
        assert self.env.reindexer.state().status == "completed"


@pytest.fixture()
def workers(
    backend: str, model: Model, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Worker, Worker]]:
    url = new_database(backend, request, tmp_path)
    first, second = Worker(url, model), Worker(url, model)
    yield first, second
    first.repository.close()
    second.repository.close()


def test_new_and_retired_parameter_reach_the_other_worker(
    workers: tuple[Worker, Worker], model: Model
) -> None:
    one, two = workers
    for patient in _patients(5):
        assert one.call("PUT", f"Patient/{patient['id']}", patient).status == 201
    assert one.call("PUT", "SearchParameter/eye-colour", SEARCH_PARAMETER).status == 201
    assert two.call("GET", "Patient", None, **{"eye-colour": "blue"}).status == 400
    one.reindex()  # defined and reindexed through one worker, searched through the other
    assert two.ids(**{"eye-colour": "blue"}) == {"eye0", "eye3"}
    new = {**_patients(1)[0], "id": "eye7"}
    assert two.call("PUT", "Patient/eye7", new).status == 201  # indexed with it by worker two
    assert one.ids(**{"eye-colour": "blue"}) == {"eye0", "eye3", "eye7"}
    expected = MemoryIndex(two.indexer, [*_patients(5), new]).search(
        SearchQuery("Patient", (SearchClause("eye-colour", ("blue", "green")),))
    )
    assert one.ids(**{"eye-colour": "blue,green"}) == {key[1] for key in expected}
    statement = orjson.loads(two.call("GET", "metadata").body)
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "eye-colour" in {p["name"] for p in patient["searchParam"]}

    retired = {**SEARCH_PARAMETER, "status": "retired"}
    assert two.call("PUT", "SearchParameter/eye-colour", retired).status == 200
    assert one.ids(**{"eye-colour": "blue"}) == {"eye0", "eye3", "eye7"}  # until $reindex
    two.reindex()  # retired through worker two: worker one drops it
    response = one.call("GET", "Patient", None, **{"eye-colour": "blue"})
    assert response.status == 400 and b"eye-colour" in response.body
    assert one.env.search_registry.parameters == ()
    fresh = SearchIndexer(model)  # a worker starting now: the standard parameters only
    SearchRegistry(one.repository, fresh).refresh(force=True)
    assert "eye-colour" not in fresh.model.search_params_for("Patient")


def test_changed_definition_applies_by_version(workers: tuple[Worker, Worker]) -> None:
    one, two = workers
    for patient in _patients(3):
        assert one.call("PUT", f"Patient/{patient['id']}", patient).status == 201
    assert one.call("PUT", "SearchParameter/eye-colour", SEARCH_PARAMETER).status == 201
    one.reindex()
    by_family = {**SEARCH_PARAMETER, "type": "string", "expression": "Patient.name.family"}
    assert one.call("PUT", "SearchParameter/eye-colour", by_family).status == 200
    assert two.ids(**{"eye-colour": "blue"}) == {"eye0"}  # the reindexed version stays
    with one.repository.read_transaction() as tx:
        text = tx.job_state(REGISTRY)
    assert text is not None and Published.loads(text).parameters == (("eye-colour", 1),)
    two.reindex()
    assert one.ids(**{"eye-colour": "iris1"}) == {"eye1"}  # now a string on the family name
    assert one.ids(**{"eye-colour": "blue"}) == set()


def test_registry_looks_at_most_once_per_max_age(tmp_path: Path, model: Model) -> None:
    url = f"sqlite:///{tmp_path / 'age.db'}"
    writer_indexer, reader_indexer = SearchIndexer(model), SearchIndexer(model)
    writer = open_repository(url, indexer=writer_indexer)
    reader = open_repository(url, indexer=reader_indexer)
    try:
        with writer.transaction() as tx:
            tx.update(dict(SEARCH_PARAMETER))
        now = [100.0]
        registry = SearchRegistry(reader, reader_indexer, max_age=1.0, clock=lambda: now[0])
        assert not registry.refresh() and registry.generation is None  # nothing published
        Reindexer(writer, writer_indexer, grace=0).run()
        now[0] += 0.5
        assert not registry.refresh()  # trusted for max_age: no read
        assert "eye-colour" not in reader_indexer.model.search_params_for("Patient")
        now[0] += 0.6
        assert registry.refresh() and registry.generation == 1
        assert "eye-colour" in reader_indexer.model.search_params_for("Patient")
        assert not registry.refresh(force=True)  # same generation: nothing to do
    finally:
        writer.close()
        reader.close()


def test_stale_write_during_reindex_is_indexed_again(empty_url: str, model: Model) -> None:
    """A worker that indexed a write with the old definitions after the reindex passed it
    (before its registry noticed): the reindex's final pass gives it its rows."""
    indexer, stale_indexer = SearchIndexer(model), SearchIndexer(model)
    repo = open_repository(empty_url, indexer=indexer)
    stale = open_repository(empty_url, indexer=stale_indexer)  # never refreshes here
    try:
        with repo.transaction() as tx:
            tx.put_many(_patients(6))
            tx.update(dict(SEARCH_PARAMETER))

        def write_behind(state: ReindexState) -> None:
            if state.status == "running" and state.done == 2:  # Patient/eye0 is behind
                with stale.transaction() as tx:
                    tx.update({**_patients(2)[1], "id": "eye0"})  # brown now

        Reindexer(repo, indexer, batch_size=2, grace=0).run(write_behind)
        query = SearchQuery("Patient", (SearchClause("eye-colour", ("brown",)),), count=100)
        assert {s.id for s in repo.search(query).resources} == {"eye0", "eye1", "eye4"}
    finally:
        repo.close()
        stale.close()
