"""``cmio synth``: generate a synthetic health system as Bulk Data NDJSON or Bundles.

See :mod:`cmio.synth` and https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to the CLI."""

    @app.command("synth")
    def synth(
        out: Annotated[Path, typer.Option("--out", help="Output folder")],
        patients: Annotated[
            int, typer.Option("--patients", min=1, help="Number of patients")
        ] = 1000,
        years: Annotated[
            float, typer.Option("--years", min=0.1, max=20, help="Years of care simulated")
        ] = 1.0,
        seed: Annotated[
            int, typer.Option("--seed", help="Seed: the same seed gives the same bytes")
        ] = 1,
        fmt: Annotated[
            str,
            typer.Option(
                "--format",
                help="ndjson (one Type.ndjson per type) or bundles (one transaction Bundle per patient)",
            ),
        ] = "ndjson",
        workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes")] = 1,
    ) -> None:
        """Generate a synthetic health system: organizations, clinicians, patients and their care.

        Writes FHIR R4 resources (Bulk Data NDJSON or transaction Bundles) and the
        vendor-style EHR audit log ``audit-log.csv``; load them with ``cmio import OUT``.
        """
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from cmio.synth import SynthConfig, generate

        if fmt not in ("ndjson", "bundles"):
            raise typer.BadParameter("--format must be ndjson or bundles")
        console = Console(stderr=True)
        config = SynthConfig(patients, out, years=years, seed=seed, format=fmt, workers=workers)
        columns = (
            TextColumn("[bold]synth"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("patients"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("synth", total=patients)
            summary = generate(config, lambda n: bar.advance(task, n))
        rate = summary.resources / max(summary.seconds, 1e-6)
        console.print(
            f"Generated {summary.patients:,} patients, {summary.resources:,} resources in"
            f" {summary.seconds:.1f} s ({rate:,.0f} resources/s) into {out}"
        )
