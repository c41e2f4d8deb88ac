"""A cmio server per backend for the rule tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model, load_model
from cmio.testing.pg import with_search_path
from cmio.testing.server import ServerThread


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("rules") / "cmio.db"
        yield f"sqlite:///{path}"
    else:
        server_url: str = request.getfixturevalue("postgres_url")
        schema = f"rules_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(server_url, schema)


@pytest.fixture(scope="module")
def app(database_url: str, model: Model) -> Iterator[CmioApp]:
    settings = Settings(validation="off", terminology_db=None)
    built = CmioApp(build_env(database_url, settings, model))
    with ServerThread(built, close_app=True) as running:
        built.server = running  # type: ignore[attr-defined]
        yield built
