"""A real cmio server on a loopback port per backend, and an httpx client for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model, load_model
from cmio.testing.pg import with_search_path
from cmio.testing.server import ServerThread, free_port

__all__ = ["ServerThread", "free_port"]


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
        path: Path = tmp_path_factory.mktemp("api") / "cmio.db"
        yield f"sqlite:///{path}"
    else:
        server_url: str = request.getfixturevalue("postgres_url")
        schema = f"api_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(server_url, schema)


@pytest.fixture(scope="module")
def server(database_url: str, model: Model) -> Iterator[ServerThread]:
    settings = Settings(max_body_bytes=2 * 1024 * 1024, max_bundle_entries=500)
    app = CmioApp(build_env(database_url, settings, model))
    with ServerThread(app, close_app=True) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base, timeout=30, headers={"accept": "application/fhir+json"}
    ) as http:
        yield http
