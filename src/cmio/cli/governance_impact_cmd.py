"""``cmio governance impact TYPE/ID``: the impact analysis of a proposed artifact version.

Compares the version with the active one of its canonical URL on the store (see
docs/governance.md, "Impact analysis") and prints the summary; ``--json``, ``--html``
and ``--pdf`` write the full analysis and the steering-committee report. Registered by
:mod:`cmio.cli.governance_cmd`, which also records the summary in the Provenance of
``submit`` and ``approve`` (:func:`impact_recorder`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["cli_analyzer", "impact_recorder", "register_impact"]


def cli_analyzer(repository: Any) -> Any:
    """An :class:`~cmio.governance.impact.ImpactAnalyzer` over an open store, with the
    terminology service on it and CDS prefetch answered in-process by a FHIR router."""
    from cmio.api.env import Env, Settings
    from cmio.api.ops.governance_impact import env_analyzer
    from cmio.model import load_model
    from cmio.terminology.factory import open_terminology

    env = Env(repository, load_model(), lambda resource: [], Settings(validation="off"))
    env.terminology = open_terminology(repository)
    return env_analyzer(env)


def impact_recorder(repository: Any) -> Callable[[str, str], str | None]:
    """``(type, id) -> summary`` for :class:`cmio.governance.Governance` ``impact``."""

    def impact(rtype: str, rid: str) -> str | None:
        summary: str | None = cli_analyzer(repository).summary_for(rtype, rid)
        return summary

    return impact


def register_impact(group: typer.Typer) -> None:
    """Add ``impact`` to the ``cmio governance`` group."""

    @group.command("impact")
    def impact(
        artifact: Annotated[str, typer.Argument(help="TYPE/ID of the proposed version")],
        days: Annotated[int, typer.Option(min=1, help="Window of a rule change, in days")] = 90,
        period: Annotated[
            str | None,
            typer.Option(help="Measurement period YYYY-MM-DD/YYYY-MM-DD (default: 365 days)"),
        ] = None,
        html: Annotated[Path | None, typer.Option(help="Write the HTML report here")] = None,
        pdf: Annotated[Path | None, typer.Option(help="Write the PDF report here")] = None,
        json_out: Annotated[
            Path | None, typer.Option("--json", help="Write the analysis as JSON here")
        ] = None,
        database: Annotated[
            str | None, typer.Option(help="Store URL (default: $CMIO_DATABASE_URL)")
        ] = None,
    ) -> None:
        """Impact of a proposed artifact version on the live data (value set, rule, CDS
        service or measure), against the active version."""
        import orjson
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from cmio.governance import GovernanceError
        from cmio.indexing import SearchIndexer
        from cmio.measures import Period
        from cmio.model import load_model
        from cmio.store import default_database_url, open_repository
        from cmio.store.base import StoreError

        rtype, _, rid = artifact.partition("/")
        if not rtype or not rid or "/" in rid:
            raise typer.BadParameter(f"'{artifact}' is not TYPE/ID", param_hint="ARTIFACT")
        try:
            measured = Period.parse(period) if period else None
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--period") from None
        repository = open_repository(
            database or default_database_url(), indexer=SearchIndexer(load_model())
        )
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        try:
            with Progress(*columns, transient=True) as progress:
                progress.add_task(f"Impact analysis of {artifact}", total=None)
                report = cli_analyzer(repository).analyze(rtype, rid, days=days, period=measured)
        except (GovernanceError, StoreError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        finally:
            repository.close()
        typer.echo(report.summary())
        if json_out is not None:
            _write(json_out, orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
        if html is not None or pdf is not None:
            from cmio.reports import render_html, render_pdf

            document = report.to_report()
            if html is not None:
                _write(html, render_html(document).encode())
            if pdf is not None:
                _write(pdf, render_pdf(document))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    typer.echo(f"{path}: {len(data):,} bytes ({date.today().isoformat()})")
