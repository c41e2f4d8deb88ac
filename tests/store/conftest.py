"""Fixtures for store tests: every contract test runs against both backends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cmio.store import Repository
from cmio.store.postgres import PostgresRepository
from cmio.store.sqlite import SqliteRepository
from cmio.testing.pg import with_search_path

RepoFactory = Callable[..., Repository]


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def repo_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RepoFactory]:
    """A factory of isolated repositories for one backend.

    ``make()`` returns a repository on a fresh store (a new SQLite file, or a new
    PostgreSQL schema); ``make(name)`` opens the store called ``name``, creating it
    on first use, so a test can close and reopen the same data.
    """
    made: list[Repository] = []
    locations: dict[str, Any] = {}
    make: RepoFactory
    if request.param == "sqlite":
        base: Path = tmp_path_factory.mktemp("sqlite")

        def make(name: str | None = None, **kwargs: Any) -> Repository:
            path = base / f"{name or uuid.uuid4().hex}.db"
            repo = SqliteRepository(path, **kwargs)
            made.append(repo)
            return repo

    else:
        url: str = request.getfixturevalue("postgres_url")

        def make(name: str | None = None, **kwargs: Any) -> Repository:
            key = name or uuid.uuid4().hex
            if key not in locations:
                schema = f"t_{uuid.uuid4().hex[:16]}"
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA {schema}")
                locations[key] = with_search_path(url, schema)
            repo = PostgresRepository(locations[key], **kwargs)
            made.append(repo)
            return repo

    yield make
    for repo in made:
        repo.close()


@pytest.fixture
def repo(repo_factory: RepoFactory) -> Iterator[Repository]:
    """A repository on an empty store, closed after the test."""
    repository = repo_factory()
    yield repository
    repository.close()
