"""``cmio migrate [--dry-run]``: list and apply the store's pending schema migrations.

Opening the store (``cmio serve`` and every command) applies them too; this command
shows what an upgrade will do first, and runs it at a chosen time (an upgrade from
before the search-index tables rebuilds every resource's index rows, which takes a
while on a large store). Exit codes: 0 done or nothing to do, 2 the store cannot be
opened or is newer than this cmio. See :mod:`cmio.store.migrations`.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``migrate`` command to the CLI."""

    @app.command("migrate")
    def migrate(
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Only list the pending steps")
        ] = False,
    ) -> None:
        """Upgrade the store's schema to this cmio's version (in one transaction)."""
        from rich.console import Console

        from cmio.admin.schema import stored_schema_version
        from cmio.store import StoreError, default_database_url
        from cmio.store.migrations import pending

        url = database or default_database_url()
        dialect = "sqlite" if url.split(":", 1)[0].lower() == "sqlite" else "postgres"
        console = Console(stderr=True)
        try:
            version, newest = stored_schema_version(url)
            todo = pending(dialect, version or 0)
        except StoreError as exc:
            typer.echo(f"migrate: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"database at store schema version {version or 0}; this cmio writes {newest}")
        if not todo:
            typer.echo("store schema is up to date")
            return
        for step in todo:
            typer.echo(f"  step {step.version}: {step.description}")
        if dry_run:
            typer.echo(f"{len(todo)} step(s) pending (dry run: nothing changed)")
            return
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model
        from cmio.store import open_repository

        with console.status("migrating (rebuilding search indexes when a step needs it)"):
            try:
                open_repository(url, indexer=SearchIndexer(load_model())).close()
            except StoreError as exc:
                typer.echo(f"migrate: {exc}", err=True)
                raise typer.Exit(2) from exc
        typer.echo(f"migrated {len(todo)} step(s): now at {todo[-1].version}")
