"""Versioned schema migrations of the store, per SQL dialect.

Each dialect has numbered :class:`Step` s (:mod:`.sqlite_steps`, :mod:`.postgres_steps`);
the version a database is at is recorded per component in its ``schema_version``
table (component ``store``). Opening a repository runs :func:`migrate` inside the
same transaction that reads the version, so a database is either fully at the new
version or untouched; a database whose version is newer than the last step is
refused with :class:`SchemaTooNewError`. Steps that add search-index tables mark the
resources already stored as needing their index rows rebuilt, which :func:`migrate`
does at the end, in the same transaction (searches work right after the upgrade).

``cmio migrate [--dry-run]`` lists and applies the pending steps.
See https://hl7.org/fhir/R4/search.html for what the index tables serve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from cmio.store.base import StoreError

__all__ = [
    "COMPONENT",
    "SchemaTooNewError",
    "Step",
    "latest",
    "migrate",
    "pending",
    "steps",
]

#: the ``schema_version`` component of the resource store
COMPONENT = "store"
_CHUNK = 500


class SchemaTooNewError(StoreError):
    """The database was written by a newer cmio (its schema version is unknown here)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One schema change, from ``version - 1`` to ``version``.

    Attributes:
        version: the version the database is at after this step.
        description: what it changes (shown by ``cmio migrate``).
        statements: DDL run in order (idempotent: ``IF NOT EXISTS`` and the like).
        reindex_if_missing: a table whose absence before the step means the resources
            already stored have no rows in the tables it adds: their index rows are
            rebuilt after the last step.
    """

    version: int
    description: str
    statements: tuple[str, ...]
    reindex_if_missing: str | None = None


class Executor(Protocol):
    """The transaction surface migrations need (a :class:`cmio.store._sqlbase.SqlTransaction`)."""

    def _fetchone(self, sql: str, params: Sequence[Any]) -> Any: ...

    def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    def _execute(self, sql: str, params: Sequence[Any]) -> int: ...


def steps(dialect: str) -> tuple[Step, ...]:
    """Every step of ``dialect`` (``sqlite`` or ``postgres``), oldest first."""
    if dialect == "sqlite":
        from cmio.store.migrations.sqlite_steps import steps as make
    elif dialect == "postgres":
        from cmio.store.migrations.postgres_steps import steps as make
    else:
        raise StoreError(f"no migrations for dialect {dialect!r}")
    found = make()
    assert [s.version for s in found] == list(range(1, len(found) + 1))
    return found


def latest(dialect: str) -> int:
    """The schema version this cmio writes for ``dialect``."""
    return steps(dialect)[-1].version


def pending(dialect: str, version: int) -> list[Step]:
    """The steps a database at ``version`` (0: empty) still needs.

    Raises:
        SchemaTooNewError: ``version`` is newer than this cmio knows.
    """
    newest = latest(dialect)
    if version > newest:
        raise SchemaTooNewError(
            f"the database has store schema version {version}; this cmio supports up to"
            f" {newest}: upgrade cmio (a database is never downgraded)"
        )
    return [s for s in steps(dialect) if s.version > version]


def stored_version(tx: Executor, has_table: Callable[[str], bool]) -> int:
    """The recorded ``store`` version (0 when the database is empty)."""
    if not has_table("schema_version"):
        return 1 if has_table("resource") else 0
    row = tx._fetchone("SELECT version FROM schema_version WHERE component = ?", (COMPONENT,))
    if row is None:
        return 1 if has_table("resource") else 0
    return int(row[0])


def migrate(
    tx: Any,
    dialect: str,
    has_table: Callable[[str], bool],
    *,
    dry_run: bool = False,
) -> tuple[int, list[Step]]:
    """Bring the database of ``tx`` (an open write transaction) to the latest version.

    Args:
        tx: the write transaction (a ``SqlTransaction``: ``_execute``, ``replace_index``,
            ``scan`` and ``_index_rows`` are used).
        dialect: ``sqlite`` or ``postgres``.
        has_table: whether a table (or view) of that name exists in the store's schema.
        dry_run: only report the pending steps.

    Returns:
        ``(version before, steps applied or pending)``.

    Raises:
        SchemaTooNewError: the database is newer than this cmio.
    """
    version = stored_version(tx, has_table)
    todo = pending(dialect, version)
    if dry_run or not todo:
        return version, todo
    reindex = False
    for step in todo:
        if step.reindex_if_missing is not None and not has_table(step.reindex_if_missing):
            reindex = reindex or version > 0
    if reindex and getattr(getattr(tx, "_indexer", None), "table_rows", None) is None:
        raise StoreError(
            f"upgrading this store from schema version {version} rebuilds its search index:"
            " open it with the full search indexer (run `cmio migrate`)"
        )
    for step in todo:
        for statement in step.statements:
            tx._execute(statement, ())
    tx._execute("DELETE FROM schema_version WHERE component = ?", (COMPONENT,))
    tx._execute(
        "INSERT INTO schema_version (component, version) VALUES (?, ?)",
        (COMPONENT, todo[-1].version),
    )
    if reindex:
        rebuild_index(tx)
    return version, todo


def rebuild_index(tx: Any) -> int:
    """Rewrite the index rows of every current resource (in chunks); returns how many."""
    after: tuple[str, str] | None = None
    done = 0
    while batch := tx.scan(after, _CHUNK):
        keys = [(s.type, s.id) for s in batch]
        rows = [tx._index_rows(s.type, s.id, orjson.loads(s.data)) for s in batch]
        tx.replace_index(keys, rows)
        done += len(batch)
        after = keys[-1]
    return done
