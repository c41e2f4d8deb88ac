"""Index rows computed before the transaction (``ahead``) on both backends."""

from __future__ import annotations

import pytest

from cmio.indexing.extract import SearchIndexer
from cmio.model import load_model
from cmio.store.base import ConflictError, SearchClause, SearchQuery
from tests.store.conftest import RepoFactory


@pytest.fixture(scope="module")
def indexer() -> SearchIndexer:
    return SearchIndexer(load_model())


def _ids(repo: object, family: str) -> list[str]:
    query = SearchQuery("Patient", (SearchClause("family", (family,)),))
    return [r.id for r in repo.search(query).resources]  # type: ignore[attr-defined]


def test_ahead_rows_are_written_and_ids_in_use_refused(
    repo_factory: RepoFactory, indexer: SearchIndexer
) -> None:
    repo = repo_factory(indexer=indexer)
    patient = {"resourceType": "Patient", "id": "p-ahead", "name": [{"family": "Aheadson"}]}
    rows = indexer.table_rows(patient)
    with repo.transaction() as tx:
        stored = tx.create(patient, id="p-ahead", ahead=rows)
    assert stored.version == 1
    assert _ids(repo, "aheadson") == ["p-ahead"]
    again = {"resourceType": "Patient", "id": "p-ahead", "name": [{"family": "Other"}]}
    with pytest.raises(ConflictError), repo.transaction() as tx:
        tx.create(again, id="p-ahead", ahead=indexer.table_rows(again))
    assert _ids(repo, "other") == []
    renamed = {"resourceType": "Patient", "id": "p-ahead", "name": [{"family": "Renamed"}]}
    with repo.transaction() as tx:
        stored, created = tx.update(renamed, ahead=indexer.table_rows(renamed))
    assert (stored.version, created) == (2, False)
    assert _ids(repo, "aheadson") == [] and _ids(repo, "renamed") == ["p-ahead"]
