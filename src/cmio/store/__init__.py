"""cmio.store: versioned FHIR resource storage (SQLite embedded, PostgreSQL for scale).

Use :func:`open_repository` with a database URL; everything above the store
speaks the :class:`~cmio.store.base.Repository` contract.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cmio.store._common import format_instant, parse_date_range
from cmio.store.base import (
    ConflictError,
    GoneError,
    HistoryPage,
    Indexer,
    IndexRow,
    InvalidRequestError,
    NotFoundError,
    Repository,
    SearchClause,
    SearchPage,
    SearchQuery,
    StoredResource,
    StoreError,
    Transaction,
    VersionConflictError,
)
from cmio.store.identifiers import DefaultIndexer

if TYPE_CHECKING:
    from cmio.store.postgres import PostgresRepository
    from cmio.store.sqlite import SqliteRepository

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConflictError",
    "DefaultIndexer",
    "GoneError",
    "HistoryPage",
    "IndexRow",
    "Indexer",
    "InvalidRequestError",
    "NotFoundError",
    "PostgresRepository",
    "Repository",
    "SearchClause",
    "SearchPage",
    "SearchQuery",
    "SqliteRepository",
    "StoreError",
    "StoredResource",
    "Transaction",
    "VersionConflictError",
    "default_database_url",
    "format_instant",
    "open_repository",
    "parse_date_range",
]

DEFAULT_DATABASE_URL = "sqlite:///cmio-data/cmio.db"


def default_database_url() -> str:
    """``$CMIO_DATABASE_URL``, or ``sqlite:///cmio-data/cmio.db`` (relative to the cwd)."""
    return os.environ.get("CMIO_DATABASE_URL") or DEFAULT_DATABASE_URL


def sqlite_path(url: str) -> Path:
    """The file path in a ``sqlite:///relative.db`` or ``sqlite:////abs/path.db`` URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite file URL: {url!r} (use sqlite:///path/to/file.db)")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise ValueError(f"sqlite URL needs a file path: {url!r}")
    return Path(path)


def open_repository(url: str | None = None, *, indexer: Indexer | None = None) -> Repository:
    """Open the repository a database URL names.

    ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` open an
    embedded SQLite file; ``postgresql://...`` and ``postgres://...`` a PostgreSQL
    database (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING).

    Args:
        url: the database URL; :func:`default_database_url` when None.
        indexer: search-index extractor; :class:`DefaultIndexer` when None.

    Raises:
        ValueError: unknown URL scheme.
    """
    url = url or default_database_url()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from cmio.store.sqlite import SqliteRepository

        return SqliteRepository(sqlite_path(url), indexer=indexer)
    if scheme in ("postgresql", "postgres"):
        from cmio.store.postgres import PostgresRepository

        return PostgresRepository(url, indexer=indexer)
    raise ValueError(f"unsupported database URL scheme {scheme!r} in {url!r}")


def __getattr__(name: str) -> object:
    # Backends import lazily so that importing cmio.store stays cheap.
    if name == "SqliteRepository":
        from cmio.store.sqlite import SqliteRepository

        return SqliteRepository
    if name == "PostgresRepository":
        from cmio.store.postgres import PostgresRepository

        return PostgresRepository
    raise AttributeError(name)
