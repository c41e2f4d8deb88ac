"""``cmio validate``: validate FHIR JSON files against the R4 definitions and profiles.

See https://hl7.org/fhir/R4/validation.html. Each FILE is a resource (a Bundle
is validated whole, entries included) or NDJSON (one resource per line). The
issues are printed per file as a table; the exit code is 1 if any error was
found, 2 if a file or package cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _resources(path: Path) -> list[tuple[str, Any]]:
    """(label, parsed JSON) for each resource in a file."""
    import orjson

    data = path.read_bytes()
    if path.suffix == ".ndjson":
        return [
            (f"{path}:{number}", orjson.loads(line))
            for number, line in enumerate(data.splitlines(), 1)
            if line.strip()
        ]
    return [(str(path), orjson.loads(data))]


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to the CLI."""

    @app.command("validate")
    def validate(
        files: Annotated[list[Path], typer.Argument(help="FHIR JSON or NDJSON files")],
        profile: Annotated[
            list[str] | None,
            typer.Option("--profile", help="Canonical URL of a profile to check, repeatable"),
        ] = None,
        package: Annotated[
            list[Path] | None,
            typer.Option("--package", help="FHIR NPM package (.tgz) with profiles, repeatable"),
        ] = None,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Print errors only, not warnings")
        ] = False,
    ) -> None:
        """Validate FILE... (structure, invariants, bindings, profiles); exit 1 on errors."""
        import orjson
        from rich.console import Console
        from rich.table import Table

        from cmio.model import load_model
        from cmio.validation.packages import FhirPackageError
        from cmio.validation.validator import Validator

        console = Console()
        try:
            validator = Validator(load_model(), packages=package or ())
        except FhirPackageError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        errors = 0
        for path in files:
            try:
                resources = _resources(path)
            except (OSError, orjson.JSONDecodeError) as exc:
                console.print(f"[red]error:[/red] cannot read {path}: {exc}")
                raise typer.Exit(2) from None
            for label, resource in resources:
                issues = validator.validate(resource, profile or ())
                if quiet:
                    issues = [i for i in issues if i.severity in ("error", "fatal")]
                failed = sum(i.severity in ("error", "fatal") for i in issues)
                errors += failed
                if not issues:
                    console.print(f"[green]{label}: OK[/green]")
                    continue
                table = Table(title=f"{label}: {failed} error(s), {len(issues) - failed} other")
                for column in ("severity", "code", "location", "message"):
                    table.add_column(column, overflow="fold")
                for issue in issues:
                    color = "red" if issue.severity in ("error", "fatal") else "yellow"
                    table.add_row(
                        f"[{color}]{issue.severity}[/{color}]",
                        issue.code,
                        issue.expression,
                        issue.message,
                    )
                console.print(table)
        if errors:
            raise typer.Exit(1)
