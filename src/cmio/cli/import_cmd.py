"""``cmio import``: load FHIR Bundles and NDJSON files into the store.

See :mod:`cmio.bulk.importer` and https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmio.store import default_database_url

if TYPE_CHECKING:
    from rich.console import Console

    from cmio.bulk.report import ImportSummary

__all__ = ["register"]

DEFAULT_REPORT = "cmio-import-report.ndjson"


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def register(app: typer.Typer) -> None:
    """Add the ``import`` command to the CLI."""

    @app.command("import")
    def import_(
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="Bundle (.json) / NDJSON (.ndjson[.gz]) files or folders", exists=True
            ),
        ],
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Database URL (default: $CMIO_DATABASE_URL or sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                min=0,
                help="Parser processes (0: parse in this process; default: CPUs - 1)",
            ),
        ] = None,
        report: Annotated[
            Path,
            typer.Option(
                "--report", help="Where rejected resources are written (NDJSON, or CSV if *.csv)"
            ),
        ] = Path(DEFAULT_REPORT),
        batch_size: Annotated[
            int, typer.Option("--batch-size", min=1, help="Resources per write transaction")
        ] = 5000,
    ) -> None:
        """Import FHIR data: transaction/batch/collection Bundles and Bulk Data NDJSON.

        Input ids are kept, references rewritten and resolved, invalid resources
        reported (not stored). Exits with status 1 if anything was rejected.
        """
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from cmio.api.env import Settings
        from cmio.bulk.importer import ImportProgress, import_paths
        from cmio.security.audit.jobs import JobAudit

        url = database or default_database_url()
        audited = Settings.from_environment(os.environ).audit  # CMIO_AUDIT, on by default
        audit = JobAudit.for_command("import") if audited else None
        console = Console(stderr=True)
        columns = (
            TextColumn("[bold]import"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn(
                "{task.fields[resources]:>9,} resources {task.fields[rate]:>7,.0f}/s"
                " {task.fields[rejected]:,} rejected"
            ),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("import", total=None, resources=0, rate=0.0, rejected=0)
            started = bar.get_time()

            def progress(p: ImportProgress) -> None:
                elapsed = max(bar.get_time() - started, 1e-6)
                bar.update(
                    task,
                    completed=p.bytes_done,
                    total=p.bytes_total,
                    resources=p.resources,
                    rate=p.resources / elapsed,
                    rejected=p.rejected,
                )

            summary = import_paths(
                url,
                [str(p) for p in paths],
                workers=_default_workers() if workers is None else workers,
                batch_size=batch_size,
                report_path=report,
                progress=progress,
                audit=None if audit is None else audit.batch,  # a record per batch, in it
            )
        _print_summary(console, summary)
        if summary.rejected:
            console.print(
                f"[red]{summary.rejected} resources rejected[/red]; see {summary.report_path}"
            )
            raise typer.Exit(1)


def _print_summary(console: Console, summary: ImportSummary) -> None:
    from rich.table import Table

    table = Table(
        title=f"Imported {summary.files} files in {summary.seconds:.1f} s ({summary.per_second:,.0f} resources/s)"
    )
    for name in ("resource type", "created", "updated", "unchanged", "rejected"):
        table.add_column(name, justify="left" if name == "resource type" else "right")
    for rtype in sorted(summary.by_type):
        c = summary.by_type[rtype]
        table.add_row(
            rtype,
            f"{c.created:,}",
            f"{c.updated:,}",
            f"{c.unchanged:,}",
            f"[red]{c.rejected:,}[/red]" if c.rejected else "0",
        )
    t = summary.totals()
    table.add_row(
        "[bold]total", f"{t.created:,}", f"{t.updated:,}", f"{t.unchanged:,}", f"{t.rejected:,}"
    )
    console.print(table)
    for note in summary.skipped_files:
        console.print(f"[yellow]skipped[/yellow] {note}")
