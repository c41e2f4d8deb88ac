"""Fixtures for bulk import/export tests: data paths, database URLs per backend, a server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cmio.model import Model, load_model
from cmio.testing.pg import with_search_path
from cmio.testing.server import ServerThread, free_port

__all__ = ["ServerThread", "free_port"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = REPO_ROOT.parent / "shared" / "data" / "synthea-r4"
REFERENCE_RE = re.compile(rb'"reference":"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})"')


@pytest.fixture(scope="session")
def synthea() -> Path:
    """The Synthea R4 test data folder (``../shared/data/synthea-r4``)."""
    if not (SYNTHEA / "bundles").is_dir():
        pytest.skip(f"Synthea test data not found at {SYNTHEA}")
    return SYNTHEA


@pytest.fixture(scope="session")
def model() -> Model:
    """The FHIR R4 model."""
    return load_model()


def new_database(kind: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A URL of an empty store: a new SQLite file, or a new schema on the test server."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
    server: str = request.getfixturevalue("postgres_url")
    schema = f"bulk_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_search_path(server, schema)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` or ``postgres``."""
    kind: str = request.param
    return kind


@pytest.fixture()
def empty_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A fresh, empty store of the module's backend."""
    return new_database(backend, request, tmp_path_factory.mktemp("db"))


@pytest.fixture()
def tmp_dir(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder (alias kept short for readability)."""
    yield tmp_path
