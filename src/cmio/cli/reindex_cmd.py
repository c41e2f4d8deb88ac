"""``cmio reindex``: rebuild the search index (and apply stored SearchParameters).

Runs the same resumable job as ``POST [base]/$reindex`` (:mod:`cmio.bulk.reindex`)
in the foreground with a progress bar; an interrupted run continues where it
stopped unless ``--restart`` is given. See https://hl7.org/fhir/R4/searchparameter.html.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``reindex`` command to the CLI."""

    @app.command("reindex")
    def reindex(
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        restart: Annotated[
            bool, typer.Option("--restart", help="Start over instead of resuming")
        ] = False,
        batch: Annotated[int, typer.Option("--batch", help="Resources per transaction")] = 500,
    ) -> None:
        """Rebuild every resource's search-index rows with the stored SearchParameters."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from cmio.api.env import Settings
        from cmio.bulk.reindex import Reindexer, ReindexState
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model
        from cmio.security.audit.jobs import JobAudit
        from cmio.store import default_database_url, open_repository

        console = Console(stderr=True)
        indexer = SearchIndexer(load_model())
        repository = open_repository(database or default_database_url(), indexer=indexer)
        try:
            audited = Settings.from_environment(os.environ).audit  # one record per job
            audit = JobAudit.for_command("reindex") if audited else None
            runner = Reindexer(
                repository,
                indexer,
                batch_size=max(1, batch),
                on_complete=None if audit is None else audit.reindexed,
            )
            saved = runner.state()
            if restart or saved is None or saved.status != "running":
                saved = runner.start()
            else:
                console.print(f"resuming after {saved.done:,} of {saved.total:,} resources")
            for skipped in saved.skipped:
                console.print(f"[yellow]skipped[/yellow] {skipped}")
            with Progress(
                "reindex", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as bar:
                task = bar.add_task("reindex", total=saved.total or None, completed=saved.done)

                def show(state: ReindexState) -> None:
                    bar.update(task, completed=state.done, total=max(state.total, state.done))

                final = runner.run(show)
            params = ", ".join(final.parameters) or "none"
            console.print(
                f"Reindexed {final.done:,} resources; custom SearchParameters in effect: {params}"
            )
        finally:
            repository.close()
