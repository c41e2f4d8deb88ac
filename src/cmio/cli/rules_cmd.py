"""``cmio rules install|list|run``: the data-quality rules (see ``docs/governance.md``).

``install`` stores the starter rule set (and the starter CDS services) as governed
``Library`` resources; ``list`` shows the active rules; ``run`` evaluates them over the
store with a progress bar and prints (or writes) the findings table
(rule, resource, severity, message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

_DATABASE = typer.Option("--database", help="Store URL (default: $CMIO_DATABASE_URL)")


def _open(database: str | None) -> Any:
    """The store with its search indexer (rules are found by ``Library.topic``)."""
    from cmio.indexing import SearchIndexer
    from cmio.model import load_model
    from cmio.store import default_database_url, open_repository

    return open_repository(database or default_database_url(), indexer=SearchIndexer(load_model()))


def register(app: typer.Typer) -> None:
    """Add the ``rules`` command group to ``app``."""
    rules = typer.Typer(no_args_is_help=True, help="Data-quality rules and CDS services")
    app.add_typer(rules, name="rules")

    @rules.command("install")
    def install(
        database: Annotated[str | None, _DATABASE] = None,
        status: Annotated[str, typer.Option(help="Status of the stored rules")] = "active",
    ) -> None:
        """Store the starter rules and CDS services as Library resources (idempotent)."""
        from cmio.cds import install_starter_services
        from cmio.rules import install_starter_rules

        repository = _open(database)
        try:
            added = install_starter_rules(repository, status)
            added += install_starter_services(repository, status)
        finally:
            repository.close()
        typer.echo(f"{added} Library resource(s) added")

    @rules.command("list")
    def list_rules(database: Annotated[str | None, _DATABASE] = None) -> None:
        """The active rules (highest version per canonical URL)."""
        from rich.console import Console
        from rich.table import Table

        from cmio.rules import active_rules

        repository = _open(database)
        try:
            found = active_rules(repository)
        finally:
            repository.close()
        table = Table("rule", "version", "severity", "types", "message")
        for rule in found:
            table.add_row(
                rule.id, rule.version, rule.severity, ",".join(rule.resource_types), rule.message
            )
        Console().print(table)

    @rules.command("cds-rates")
    def cds_rates(
        database: Annotated[str | None, _DATABASE] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Write the table as .csv")] = None,
    ) -> None:
        """Card acceptance and override rates per CDS service (alert fatigue)."""
        from rich.console import Console
        from rich.table import Table

        from cmio.cds import feedback_rates

        repository = _open(database)
        try:
            table = feedback_rates(repository)
        finally:
            repository.close()
        if out is not None:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, out)
        shown = Table(
            "service", "feedback", "accepted", "overridden", "override rate", "top reason"
        )
        for row in table.to_pylist():
            shown.add_row(
                row["service"],
                str(row["feedback"]),
                str(row["accepted"]),
                str(row["overridden"]),
                f"{row['override_rate']:.0%}",
                row["top_override_reason"] or "",
            )
        Console().print(shown)

    @rules.command("run")
    def run(
        type: Annotated[
            list[str] | None, typer.Option("--type", help="Only this resource type (repeat)")
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Findings as .csv, .parquet or .ndjson")
        ] = None,
        database: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Evaluate the active rules over every resource in the store."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from cmio.fhirpath import FhirPathEngine
        from cmio.model import load_model
        from cmio.rules import RuleEngine, active_rules, run_rules, write_findings
        from cmio.store.base import SearchQuery
        from cmio.terminology.factory import open_terminology
        from cmio.terminology.providers import ServiceTerminology

        console = Console()
        repository = _open(database)
        model = load_model()
        terminology = open_terminology(repository, None)
        try:
            rules = active_rules(repository)
            engine = RuleEngine(FhirPathEngine(model), ServiceTerminology(terminology))
            types = list(type) if type else None
            if types is None and rules and all(r.resource_types for r in rules):
                types = sorted({t for r in rules for t in r.resource_types})
            scoped: list[str | None] = list(types) if types else [None]
            total = 0
            for rtype in scoped:
                total += repository.search(SearchQuery(rtype, count=0)).total or 0
            with Progress(
                TextColumn("rules"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("rules", total=total)
                table = run_rules(
                    repository,
                    engine,
                    rules,
                    types=types,
                    progress=lambda n: progress.advance(task, n),
                )
        finally:
            terminology.close()
            repository.close()
        if out is not None:
            write_findings(table, out)
            console.print(f"{table.num_rows} finding(s) written to {out}")
            return
        shown = Table("rule", "resource", "severity", "message")
        for row in table.to_pylist()[:200]:
            shown.add_row(row["rule"], row["resource"], row["severity"], row["message"])
        console.print(shown)
        console.print(f"{table.num_rows} finding(s) from {len(rules)} active rule(s)")
