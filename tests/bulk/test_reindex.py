"""$reindex: custom SearchParameters take effect, the job resumes, old data is indexed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cmio.bulk.reindex import Reindexer, ReindexState, apply_custom_parameters
from cmio.indexing import SearchIndexer
from cmio.model import Model
from cmio.search.memory import MemoryIndex
from cmio.store import open_repository
from cmio.store.base import InvalidRequestError, Repository, SearchClause, SearchQuery

EYE = "http://example.org/fhir/StructureDefinition/eye-colour"
SEARCH_PARAMETER = {
    "resourceType": "SearchParameter",
    "id": "eye-colour",
    "url": "http://example.org/fhir/SearchParameter/eye-colour",
    "name": "EyeColour",
    "status": "active",
    "description": "eye colour",
    "code": "eye-colour",
    "base": ["Patient"],
    "type": "token",
    "expression": f"Patient.extension.where(url = '{EYE}').value",
}


def _patients(n: int) -> list[dict[str, Any]]:
    colours = ["blue", "brown", "green"]
    return [
        {
            "resourceType": "Patient",
            "id": f"eye{i}",
            "name": [{"family": f"Iris{i}"}],
            "extension": [{"url": EYE, "valueCode": colours[i % 3]}],
        }
        for i in range(n)
    ]


@pytest.fixture()
def store(empty_url: str, model: Model) -> Iterator[tuple[Repository, SearchIndexer]]:
    indexer = SearchIndexer(model)
    repo = open_repository(empty_url, indexer=indexer)
    with repo.transaction() as tx:
        tx.put_many(_patients(7))
        tx.update(dict(SEARCH_PARAMETER))
    yield repo, indexer
    repo.close()


def _eyes(repo: Repository, colour: str) -> set[str]:
    query = SearchQuery("Patient", (SearchClause("eye-colour", (colour,)),), count=100)
    return {s.id for s in repo.search(query).resources}


def test_custom_parameter_takes_effect_after_reindex(
    store: tuple[Repository, SearchIndexer], model: Model
) -> None:
    repo, indexer = store
    with pytest.raises(InvalidRequestError):
        _eyes(repo, "blue")  # not before $reindex
    seen: list[int] = []
    state = Reindexer(repo, indexer, batch_size=3, grace=0).run(lambda s: seen.append(s.done))
    assert state.status == "completed" and state.parameters == ["eye-colour"]
    assert state.done == state.total == 8 and seen[-1] == 8
    assert _eyes(repo, "blue") == {"eye0", "eye3", "eye6"}
    with repo.transaction() as tx:  # later writes are indexed with it too
        tx.update({**_patients(1)[0], "id": "eye9"})
    assert _eyes(repo, "blue") == {"eye0", "eye3", "eye6", "eye9"}
    memory = MemoryIndex(indexer, [*_patients(7), {**_patients(1)[0], "id": "eye9"}])
    query = SearchQuery("Patient", (SearchClause("eye-colour", ("blue", "green")),))
    assert {k[1] for k in memory.search(query)} == {s.id for s in repo.search(query).resources}
    fresh = SearchIndexer(model)  # a server starting later applies it again
    assert apply_custom_parameters(repo, fresh) == ["eye-colour"]
    assert "eye-colour" in fresh.search_compiler.model.search_params_for("Patient")


def test_interrupted_reindex_resumes(store: tuple[Repository, SearchIndexer], model: Model) -> None:
    repo, indexer = store

    def stop(state: ReindexState) -> None:
        if state.status == "running" and state.done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Reindexer(repo, indexer, batch_size=3).run(stop)
    saved = Reindexer(repo, indexer).state()
    assert saved is not None and saved.status == "running" and saved.done == 3
    assert saved.cursor is not None
    resumed = Reindexer(repo, SearchIndexer(model), batch_size=3, grace=0).run()  # a new process
    assert resumed.status == "completed" and resumed.done == 8
    assert _eyes(repo, "green") == {"eye2", "eye5"}


def test_reindex_indexes_data_stored_without_rows(
    store: tuple[Repository, SearchIndexer],
) -> None:
    repo, indexer = store
    with repo.transaction() as tx:  # as if stored before the current index schema
        tx.replace_index([("Patient", f"eye{i}") for i in range(7)], [])
    family = SearchQuery("Patient", (SearchClause("family", ("iris",)),), count=100)
    assert repo.search(family).total == 0
    Reindexer(repo, indexer, grace=0).run()
    assert repo.search(family).total == 7


def test_cli_reindex(tmp_path: Any, model: Model) -> None:
    from typer.testing import CliRunner

    from cmio.cli.main import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    repo = open_repository(url, indexer=SearchIndexer(model))
    with repo.transaction() as tx:
        tx.put_many(_patients(4))
        tx.update(dict(SEARCH_PARAMETER))
    repo.close()
    result = CliRunner().invoke(app, ["reindex", "--database", url, "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "Reindexed 5 resources" in result.output and "eye-colour" in result.output
    indexer = SearchIndexer(model)
    repo = open_repository(url, indexer=indexer)
    try:
        assert apply_custom_parameters(repo, indexer) == ["eye-colour"]
        assert _eyes(repo, "brown") == {"eye1"}
    finally:
        repo.close()
