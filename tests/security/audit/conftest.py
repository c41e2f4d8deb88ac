"""Stores for the audit tests: a fresh SQLite file or a fresh PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cmio.model import Model, load_model
from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.testing.pg import with_search_path


def new_url(kind: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A URL of an empty store of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
    server: str = request.getfixturevalue("postgres_url")
    schema = f"audit_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_search_path(server, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL on each backend."""
    return new_url(str(request.param), request, tmp_path)


@pytest.fixture
def repository(store_url: str) -> Iterator[Repository]:
    """An empty repository on each backend."""
    repo = open_repository(store_url)
    yield repo
    repo.close()


@pytest.fixture(scope="session")
def model() -> Model:
    """The FHIR R4 model (loaded once)."""
    return load_model()
