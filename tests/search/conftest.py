"""Fixtures for search tests: a corpus (Synthea + edge cases) loaded into both backends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cmio.indexing import SearchIndexer
from cmio.model import Model, load_model
from cmio.search.memory import MemoryIndex
from cmio.store import Repository
from cmio.store.postgres import PostgresRepository
from cmio.store.sqlite import SqliteRepository
from cmio.testing.pg import with_search_path

from .corpus import edge_cases

# ../shared beside the repository root (tests/search/conftest.py -> parents[2] is the root)
SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-r4" / "bundles"


def synthea_resources(count: int) -> list[dict[str, Any]]:
    """Resources of the first ``count`` Synthea bundles with ``urn:uuid`` references resolved."""
    out: list[dict[str, Any]] = []
    for path in sorted(SYNTHEA.glob("*.json"))[:count]:
        bundle = json.loads(path.read_text())
        ids: dict[str, str] = {}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            resource.setdefault("id", entry["fullUrl"].rsplit(":", 1)[-1])
            ids[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        text = json.dumps([e["resource"] for e in bundle["entry"]])
        for full, ref in ids.items():
            text = text.replace(f'"{full}"', f'"{ref}"')
        out.extend(json.loads(text))
    return out


@pytest.fixture(scope="session")
def model() -> Model:
    """The R4 model."""
    return load_model()


@pytest.fixture(scope="session")
def indexer(model: Model) -> SearchIndexer:
    """The full search indexer."""
    return SearchIndexer(model)


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    """Three Synthea patients plus the generated edge cases."""
    return synthea_resources(3) + edge_cases()


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def loaded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    indexer: SearchIndexer,
    corpus: list[dict[str, Any]],
) -> Iterator[tuple[Repository, MemoryIndex]]:
    """The corpus in a repository of each backend, and in memory."""
    repo: Repository
    if request.param == "sqlite":
        repo = SqliteRepository(tmp_path_factory.mktemp("search") / "s.db", indexer=indexer)
    else:
        url: str = request.getfixturevalue("postgres_url")
        schema = f"s_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        repo = PostgresRepository(with_search_path(url, schema), indexer=indexer)
    resources = json.loads(json.dumps(corpus))
    with repo.transaction() as tx:
        tx.put_many(resources)
    memory = MemoryIndex(indexer, resources)
    yield repo, memory
    repo.close()
