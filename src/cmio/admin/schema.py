"""The store schema version recorded in a database, read without opening the store.

Opening a repository upgrades an older schema in place, so checks that must see the
version as stored (``cmio doctor``) read it here with a plain connection.
"""

from __future__ import annotations

import contextlib

from cmio.store import StoreError

__all__ = ["check_schema", "stored_schema_version"]

_VERSION_SQL = "SELECT version FROM schema_version WHERE component = 'store'"


def check_schema(version: int | None, supported: int) -> str | None:
    """The problem with a stored schema version, or None when it is known."""
    if version is None:
        return "no store schema version recorded"
    if version > supported:
        return f"store schema version {version} is newer than this cmio ({supported})"
    if version < 1:
        return f"store schema version {version} is not a cmio version"
    return None


def stored_schema_version(url: str) -> tuple[int | None, int]:
    """The store schema version recorded at ``url`` (read without opening, and so without
    upgrading, the store) and the newest version this cmio supports.

    Raises:
        StoreError: no SQLite file at the URL's path.
    """
    if url.split(":", 1)[0].lower() == "sqlite":
        import sqlite3

        from cmio.store import sqlite_path
        from cmio.store.sqlite import SCHEMA_VERSION as SQLITE_VERSION

        path = sqlite_path(url)
        if not path.is_file():
            raise StoreError(f"no database at {path}")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            try:
                row = conn.execute(_VERSION_SQL).fetchone()
            except sqlite3.Error:
                row = None
        return (None if row is None else int(row[0])), SQLITE_VERSION
    import psycopg

    from cmio.store.postgres import SCHEMA_VERSION as PG_VERSION

    with psycopg.connect(url, autocommit=True) as pg:
        try:
            found = pg.execute(_VERSION_SQL).fetchone()
        except psycopg.Error:
            found = None
    return (None if found is None else int(found[0])), PG_VERSION
