"""``cmio fhirpath``: evaluate a FHIRPath expression against a FHIR JSON file.

See :mod:`cmio.fhirpath` and http://hl7.org/fhirpath/N1/.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "to_json"]


def to_json(value: Any) -> str:
    """JSON text for a FHIRPath result, with decimals written exactly.

    Dates and times become their ISO text, quantities their FHIRPath literal.
    """
    from cmio.fhirpath import Date, DateTime, Quantity, Time

    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Date | DateTime | Time):
        return json.dumps(value.iso())
    if isinstance(value, Quantity):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}: {to_json(v)}" for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def register(app: typer.Typer) -> None:
    """Add the ``fhirpath`` command to the CLI."""

    @app.command("fhirpath")
    def fhirpath(
        expression: Annotated[str, typer.Argument(help="The FHIRPath expression")],
        file: Annotated[str, typer.Argument(help="FHIR JSON file (a resource), or - for stdin")],
        var: Annotated[
            list[str] | None,
            typer.Option("--var", help="Environment variable NAME=VALUE (a string), repeatable"),
        ] = None,
    ) -> None:
        """Evaluate EXPRESSION on the resource in FILE and print the result as a JSON array."""
        from cmio.fhirpath import FhirPathEngine, FhirPathError

        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        try:
            resource = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            typer.echo(f"error: {file} is not JSON: {exc}", err=True)
            raise typer.Exit(2) from None
        variables: dict[str, Any] = {}
        for item in var or []:
            name, sep, value = item.partition("=")
            if not sep:
                typer.echo(f"error: --var expects NAME=VALUE, got {item!r}", err=True)
                raise typer.Exit(2)
            variables[name] = value
        try:
            result = FhirPathEngine().evaluate(resource, expression, variables)
        except FhirPathError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(to_json(result))
