"""``cmio export``: write the store's current resources as Bulk Data NDJSON (``Type.ndjson``).

See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmio.store import default_database_url

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to the CLI."""

    @app.command("export")
    def export(
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        out: Annotated[
            Path, typer.Option("--out", help="Output folder (one Type.ndjson per type)")
        ] = Path("cmio-export"),
        types: Annotated[
            str | None, typer.Option("--type", help="Comma-separated resource types (default: all)")
        ] = None,
        since: Annotated[
            str | None,
            typer.Option("--since", help="Only resources changed at or after this instant"),
        ] = None,
        patient: Annotated[
            bool, typer.Option("--patient", help="Only resources in some Patient compartment")
        ] = False,
        deidentify: Annotated[
            bool,
            typer.Option(
                "--deidentify",
                help="HIPAA Safe Harbor de-identification (key: --deid-key-file or "
                "$CMIO_DEID_KEY_FILE, a file only you can read)",
            ),
        ] = False,
        deid_key_file: Annotated[
            Path | None, typer.Option("--deid-key-file", help="De-identification key (mode 0600)")
        ] = None,
    ) -> None:
        """Export current resources as NDJSON files, like a Bulk Data $export."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Table

        from cmio.bulk.exporter import ExportProgress, PatientScope, export_ndjson
        from cmio.model import load_model
        from cmio.store import SearchQuery, open_repository, parse_date_range
        from cmio.store.base import InvalidRequestError, SearchClause

        console = Console(stderr=True)
        model = load_model()
        wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
        unknown = [t for t in wanted or () if not model.is_resource_type(t)]
        if unknown:
            raise typer.BadParameter(f"unknown resource type {unknown[0]!r}", param_hint="--type")
        if since is not None:
            try:
                since = parse_date_range(since)[0]
            except InvalidRequestError as exc:
                raise typer.BadParameter(str(exc), param_hint="--since") from None
        transform = None
        if deidentify:
            from cmio.security.deid import Deidentifier

            try:
                transform = Deidentifier.load(model, deid_key_file).deidentify_json
            except (LookupError, PermissionError, OSError, ValueError) as exc:
                raise typer.BadParameter(str(exc), param_hint="--deidentify") from None
        repository = open_repository(database or default_database_url())
        try:
            total: int | None = None
            if not patient:
                clauses = (SearchClause("_lastUpdated", (f"ge{since}",)),) if since else ()
                total = 0
                counted: list[str | None] = list(wanted) if wanted else [None]
                for rtype in counted:
                    page = repository.search(SearchQuery(rtype, clauses, count=0))
                    total += page.total or 0
            columns = (
                TextColumn("[bold]export"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[current]}"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("export", total=total, current="")

                def progress(p: ExportProgress) -> None:
                    bar.update(task, completed=p.resources, current=p.current_type or "")

                files = export_ndjson(
                    repository,
                    model,
                    out,
                    types=wanted,
                    since=since,
                    patients=PatientScope() if patient else None,
                    progress=progress,
                    transform=transform,
                )
        finally:
            repository.close()
        table = Table(title=f"Exported to {out}")
        table.add_column("file")
        table.add_column("resources", justify="right")
        for f in files:
            table.add_row(f.path.name, f"{f.count:,}")
        table.add_row("[bold]total", f"{sum(f.count for f in files):,}")
        console.print(table)
