"""Session-wide fixtures shared by every test package."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cmio.testing import pg


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n 2``) pytest-benchmark warns that it turns itself off, an
    error with warnings as errors: no test uses its fixture, so it is off before it warns."""
    distributed = config.getoption("dist", "no") != "no" or os.environ.get("PYTEST_XDIST_WORKER")
    if distributed and config.pluginmanager.hasplugin("benchmark"):
        config.option.benchmark_disable = True


@pytest.fixture(scope="session", autouse=True)
def private_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the session in an empty directory of its own.

    The defaults relative to the working directory (``Settings()``'s
    ``cmio-data/exports``, ``cmio-data/terminology.db`` and ``cmio-data/hl7/journal.db``)
    then land there instead of in the checkout, and two pytest-xdist workers never share
    them. Tests find their files from ``__file__``, never from the working directory.
    """
    home = tmp_path_factory.mktemp("cwd")
    previous = Path.cwd()
    os.chdir(home)
    try:
        yield home
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database that lives for the test session.

    ``$CMIO_TEST_POSTGRES_URL`` names a server to use (a fresh database is created
    on it and dropped afterwards); otherwise a private server is started with
    :func:`cmio.testing.pg.running_postgres`. Without PostgreSQL the fixture fails,
    unless ``CMIO_SKIP_POSTGRES=1`` asks to skip PostgreSQL tests explicitly.
    """
    if os.environ.get("CMIO_SKIP_POSTGRES") == "1":
        pytest.skip("PostgreSQL tests skipped: CMIO_SKIP_POSTGRES=1")
    server = os.environ.get("CMIO_TEST_POSTGRES_URL")
    if server:
        dbname = f"cmio_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        try:
            yield pg.with_database(server, dbname)
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        return
    if pg.find_pg_bin() is None:
        pytest.fail(
            "PostgreSQL is not installed (no initdb found under /usr/lib/postgresql/*/bin"
            " or on PATH). Install the server, point CMIO_TEST_POSTGRES_URL at one, or set"
            " CMIO_SKIP_POSTGRES=1 to skip the PostgreSQL tests deliberately."
        )
    with pg.running_postgres() as url:
        yield url
