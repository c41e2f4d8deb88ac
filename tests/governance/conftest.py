"""A SQLite store and users with roles for the governance tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmio.governance import Governance
from cmio.indexing.extract import SearchIndexer
from cmio.model import Model, load_model
from cmio.security.grant import AccessGrant
from cmio.store import open_repository
from cmio.store.base import Repository


def user(name: str, *roles: str) -> AccessGrant:
    """A logged-in user with ``roles``."""
    return AccessGrant(name, "user", frozenset({"user/*.cruds"}), roles=frozenset(roles))


def valueset(codes: list[str], version: str = "1.0.0", rid: str = "vs-a1c") -> dict[str, Any]:
    """A small draft ValueSet over LOINC codes."""
    return {
        "resourceType": "ValueSet",
        "id": rid,
        "url": "https://example.org/fhir/ValueSet/a1c",
        "version": version,
        "status": "draft",
        "compose": {
            "include": [{"system": "http://loinc.org", "concept": [{"code": c} for c in codes]}]
        },
    }


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture
def repository(tmp_path: Path, model: Model) -> Iterator[Repository]:
    repo = open_repository(f"sqlite:///{tmp_path / 'gov.db'}", indexer=SearchIndexer(model))
    yield repo
    repo.close()


@pytest.fixture
def governance(repository: Repository) -> Governance:
    return Governance(repository)
