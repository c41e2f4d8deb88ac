"""``cmio synth-feeds``: HL7 v2.5.1 feeds (ADT, ORU^R01, VXU^V04) from ``cmio synth`` output.

See :mod:`cmio.synth.hl7v2.feed` and https://v2plus.hl7.org/2021Jan/index.html .
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``synth-feeds`` command to the CLI."""

    @app.command("synth-feeds")
    def synth_feeds(
        source: Annotated[
            Path,
            typer.Option("--in", exists=True, file_okay=False, help="cmio synth NDJSON folder"),
        ],
        out: Annotated[Path, typer.Option("--out", help="Output folder for the feeds")],
        seed: Annotated[
            int, typer.Option("--seed", help="Quirk seed: the same seed gives the same bytes")
        ] = 1,
    ) -> None:
        """Write HL7 v2.5.1 ADT/ORU/VXU feeds (plain and MLLP-framed) in time order."""
        from rich.console import Console

        from cmio.synth.hl7v2 import write_feeds

        if not (source / "Patient.ndjson").is_file():
            raise typer.BadParameter(
                f"{source} has no Patient.ndjson: run `cmio synth --format ndjson` first",
                param_hint="--in",
            )
        summary = write_feeds(source, out, seed=seed)
        rate = summary.messages / max(summary.seconds, 1e-6)
        counts = ", ".join(f"{k} {v:,}" for k, v in summary.by_type.items())
        Console(stderr=True).print(
            f"Wrote {summary.messages:,} messages ({counts}) in {summary.seconds:.1f} s"
            f" ({rate:,.0f} messages/s) into {out}"
        )
