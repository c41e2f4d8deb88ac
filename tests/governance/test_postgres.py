"""The lifecycle on PostgreSQL: decisions, approvals and the Provenance in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest

from cmio.governance import Governance, GovernanceError, state_of
from cmio.governance.lifecycle import set_state
from cmio.indexing.extract import SearchIndexer
from cmio.model import Model
from cmio.store import open_repository
from cmio.store.base import Repository, SearchQuery
from cmio.testing.pg import with_search_path
from tests.governance.conftest import user, valueset

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_repository(postgres_url: str, model: Model) -> Iterator[Repository]:
    schema = f"gov_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    repo = open_repository(with_search_path(postgres_url, schema), indexer=SearchIndexer(model))
    yield repo
    repo.close()


def test_lifecycle_on_postgres(pg_repository: Repository) -> None:
    governance = Governance(pg_repository, audit=True)
    body = valueset(["4548-4"])
    set_state(body, "draft")
    with pg_repository.transaction() as tx:
        tx.update(body)
    clin, tech = user("dr-house", "clinician"), user("ada", "informaticist")

    def boom(tx: Any) -> None:
        raise RuntimeError("commit refused")

    pg_repository.before_commit = boom
    with pytest.raises(RuntimeError):
        governance.transition("ValueSet", "vs-a1c", "submit", clin)
    pg_repository.before_commit = None
    assert pg_repository.search(SearchQuery("Provenance", (), 10)).resources == []
    governance.transition("ValueSet", "vs-a1c", "submit", clin)
    governance.transition("ValueSet", "vs-a1c", "approve", clin)
    with pytest.raises(GovernanceError, match="already approved"):
        governance.transition("ValueSet", "vs-a1c", "approve", clin)
    assert governance.transition("ValueSet", "vs-a1c", "approve", tech).state == "approved"
    stored = orjson.loads(pg_repository.read("ValueSet", "vs-a1c").data or b"{}")
    assert state_of(stored) == "approved"
    assert len(governance.decisions("ValueSet", "vs-a1c")) == 3
