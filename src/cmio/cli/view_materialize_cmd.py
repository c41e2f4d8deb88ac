"""``cmio view-materialize``: keep ViewDefinitions as tables of ``cmio-data/analytics.duckdb``.

Each run brings every named view up to date incrementally (only resources changed
since its last run; see :mod:`cmio.views.materialize`). Without VIEW files it
refreshes every ViewDefinition stored in the database (as ``Basic``);
``--save`` stores the given ones there first. See https://sql-on-fhir.org/ig/latest/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from cmio.store import default_database_url, open_repository

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``view-materialize`` command to the CLI."""

    @app.command("view-materialize")
    def view_materialize(
        views: Annotated[
            list[Path] | None,
            typer.Argument(help="ViewDefinition JSON files (default: stored ones)"),
        ] = None,
        database: Annotated[
            str | None, typer.Option("--database", help="Database URL of the FHIR store")
        ] = None,
        analytics: Annotated[
            Path, typer.Option("--analytics", help="The analytics DuckDB file")
        ] = Path("cmio-data/analytics.duckdb"),
        save: Annotated[
            bool, typer.Option("--save", help="Also store the VIEW files in the database")
        ] = False,
        full: Annotated[bool, typer.Option("--full", help="Rebuild instead of refreshing")] = False,
        deidentify: Annotated[
            bool,
            typer.Option(
                "--deidentify",
                help="De-identify resources before the views (HIPAA Safe Harbor; key: "
                "--deid-key-file or $CMIO_DEID_KEY_FILE)",
            ),
        ] = False,
        deid_key_file: Annotated[
            Path | None, typer.Option("--deid-key-file", help="De-identification key (mode 0600)")
        ] = None,
    ) -> None:
        """Materialize ViewDefinitions as named tables, refreshed incrementally."""
        from cmio.views import ViewDefinitionError
        from cmio.views.materialize import Analytics, stored_views, view_as_basic

        deid = None
        if deidentify:
            from cmio.model import load_model
            from cmio.security.deid import Deidentifier

            try:
                deid = Deidentifier.load(load_model(), deid_key_file)
            except (LookupError, PermissionError, OSError, ValueError) as exc:
                raise typer.BadParameter(str(exc), param_hint="--deidentify") from None
        repository = open_repository(database or default_database_url())
        try:
            definitions: list[dict[str, Any]] = []
            for path in views or []:
                try:
                    definitions.append(json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError) as exc:
                    raise typer.BadParameter(f"{path}: {exc}") from exc
            if save:
                with repository.transaction() as tx:
                    for view in definitions:
                        name = str(view.get("name") or "view").replace("_", "-")
                        tx.update(view_as_basic(view, id=name))
            if not views:
                definitions = [v for _, v in stored_views(repository)]
            target = Analytics(analytics)
            with Progress() as progress:
                task = progress.add_task("materializing", total=len(definitions))
                for view in definitions:
                    try:
                        done = target.materialize(view, repository, full=full, deidentify=deid)
                    except ViewDefinitionError as exc:
                        typer.echo(f"error: {exc}", err=True)
                        raise typer.Exit(1) from exc
                    progress.advance(task)
                    progress.console.print(
                        f"{done.name}: {done.rows} rows ({'rebuilt' if done.rebuilt else 'refreshed'};"
                        f" {done.resources} resources read, {done.deleted} deleted)"
                    )
        finally:
            repository.close()
