"""``cmio doctor``: check the store's invariants; ``--fix`` rebuilds broken index rows.

See :mod:`cmio.admin.doctor` for the checks. Exit code 0: healthy (or everything
found was fixed); 1: problems remain (listed in a table).
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``doctor`` command to the CLI."""

    @app.command("doctor")
    def doctor(
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        fix: Annotated[
            bool, typer.Option("--fix", help="Rebuild the index rows of broken resources")
        ] = False,
        full: Annotated[
            bool, typer.Option("--full", help="Check every resource's index rows, not a sample")
        ] = False,
        sample: Annotated[
            int, typer.Option("--sample", help="Resources whose index rows are checked")
        ] = 1000,
        journal: Annotated[
            str | None,
            typer.Option(
                "--journal", help="Also check this HL7 v2 engine journal against the store"
            ),
        ] = None,
    ) -> None:
        """Check resources, history, search indexes, audit chain and database integrity."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
        from rich.table import Table

        from cmio.admin.doctor import diagnose
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model
        from cmio.store import StoreError, default_database_url

        console = Console(stderr=True)
        with Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("doctor", total=None)

            def show(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total or None)

            try:
                report = diagnose(
                    database or default_database_url(),
                    SearchIndexer(load_model()),
                    full=full,
                    sample=max(1, sample),
                    fix=fix,
                    progress=show,
                    journal=journal,
                )
            except StoreError as exc:
                console.print(f"[red]doctor:[/red] {exc}")
                raise typer.Exit(2) from exc
        checked = ", ".join(f"{k} {v:,}" for k, v in report.checked.items())
        if report.findings:
            table = Table("check", "subject", "finding", "fixed")
            for f in report.findings:
                table.add_row(f.check, f.subject, f.message, "yes" if f.fixed else "no")
            Console().print(table)
        if report.ok:
            fixed = sum(1 for f in report.findings if f.fixed)
            note = f"; fixed {fixed} finding(s)" if fixed else ""
            typer.echo(f"store OK ({checked}){note}")
            return
        remaining = sum(1 for f in report.findings if not f.fixed)
        typer.echo(f"store has {remaining} problem(s) ({checked})", err=True)
        raise typer.Exit(1)
