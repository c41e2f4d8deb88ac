"""``cmio backup`` and ``cmio restore``: online snapshots of the store and their restore.

See :mod:`cmio.admin.backup` (archive layout, consistency, atomic swap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_DB_HELP = "Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)"


def register(app: typer.Typer) -> None:
    """Add the ``backup`` and ``restore`` commands to the CLI."""

    @app.command("backup")
    def backup_command(
        out: Annotated[Path, typer.Option("--out", help="Archive file to write (a tar)")],
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
    ) -> None:
        """Write a consistent snapshot of the store (online: the server may keep writing)."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from cmio.admin import BackupError, backup
        from cmio.store import default_database_url

        console = Console(stderr=True)
        with Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("backup", total=None)

            def show(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total or None)

            try:
                manifest = backup(database or default_database_url(), out, show)
            except BackupError as exc:
                console.print(f"[red]backup failed:[/red] {exc}")
                raise typer.Exit(1) from exc
        rows = sum(manifest.tables.values())
        console.print(
            f"Backed up {manifest.resources:,} resources ({rows:,} rows in"
            f" {len(manifest.tables)} tables, schema {manifest.schema_version}) to {out}"
        )

    @app.command("restore")
    def restore_command(
        archive: Annotated[Path, typer.Argument(help="Archive written by `cmio backup`")],
        database: Annotated[str | None, typer.Option("--database", help=_DB_HELP)] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Replace a target that already holds data")
        ] = False,
    ) -> None:
        """Restore a backup atomically (verified against its manifest before the swap)."""
        from rich.console import Console

        from cmio.admin import BackupError, restore
        from cmio.store import default_database_url

        console = Console(stderr=True)
        try:
            with console.status("restoring"):
                manifest = restore(archive, database or default_database_url(), force=force)
        except BackupError as exc:
            console.print(f"[red]restore failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(
            f"Restored {manifest.resources:,} resources from {archive}"
            f" (taken {manifest.created_at} from {manifest.source})"
        )
