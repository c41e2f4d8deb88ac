"""``cmio report``: the steering-committee report for a period, as PDF and HTML.

Gathers every oversight area (quality measures, physician EHR use, cost, interfaces,
data quality, governance) for the period and the one before it from the store of
``--database-url`` (default ``$CMIO_DATABASE_URL``, else ``sqlite:///cmio-data/cmio.db``)
and writes ``steering-<period>.pdf`` and ``.html`` (:mod:`cmio.oversight.steering`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from cmio.oversight.areas import Area
    from cmio.oversight.steering import SteeringData

__all__ = ["FORMATS", "register", "report_name"]

FORMATS = ("pdf", "html")


def report_name(period_label: str, fmt: str) -> str:
    """The file name of a report: ``steering-2025-10.pdf`` (``/`` in ranges becomes ``_``)."""
    return f"steering-{period_label.replace('/', '_')}.{fmt}"


def _formats(text: str) -> list[str]:
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise typer.BadParameter(
            f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(FORMATS)}",
            param_hint="--format",
        )
    return list(dict.fromkeys(wanted))


def _areas(keys: list[str] | None) -> tuple[Area, ...]:
    from cmio.oversight.areas import AREAS

    if not keys:
        return AREAS
    known = {area.key: area for area in AREAS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: choose from {', '.join(known)}", param_hint="--area"
        )
    return tuple(area for area in AREAS if area.key in keys)


def _print_summary(console: Console, data: SteeringData) -> None:
    from rich.table import Table

    view = Table(title=f"Headlines {data.period.label} (against {data.previous.label})")
    for name in ("Area", "Headline", data.period.label, data.previous.label, "Change"):
        view.add_column(name, justify="left" if name in ("Area", "Headline") else "right")
    for d in data.deltas:
        view.add_row(d.area, d.label, d.current, d.previous or "-", d.change or "-")
    console.print(view)
    for result in data.current:
        if not result.available:
            console.print(f"[yellow]not available[/]: {result.error}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to the CLI."""

    @app.command("report")
    def report_cmd(
        period: Annotated[
            str, typer.Option("--period", help="2025, 2025-Q4, 2025-10 or 2025-01/2025-06")
        ],
        out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("."),
        fmt: Annotated[str, typer.Option("--format", help="pdf, html or pdf,html")] = "pdf,html",
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                "--database",
                help="Store URL (default: $CMIO_DATABASE_URL, else sqlite:///cmio-data/cmio.db)",
            ),
        ] = None,
        only: Annotated[
            list[str] | None,
            typer.Option("--area", help="Only this area (repeatable; default: every area)"),
        ] = None,
        title: Annotated[
            str, typer.Option("--title", help="The report's title")
        ] = "Steering committee report",
    ) -> None:
        """The steering-committee report: executive summary with changes from the previous
        period, measure trends, EHR use, cost, interfaces, data quality and governance."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from cmio.api.app import build_env
        from cmio.api.env import Settings
        from cmio.oversight import ReportingPeriod
        from cmio.oversight.areas import AreaInputs
        from cmio.oversight.steering import gather, steering_report
        from cmio.reports import render_html, render_pdf
        from cmio.store import default_database_url

        try:
            when = ReportingPeriod.parse(period)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--period") from None
        formats = _formats(fmt)
        areas = _areas(only)
        console = Console(stderr=True)
        settings = replace(Settings.from_environment(os.environ), audit=False, validation="off")
        env = build_env(database_url or default_database_url(), settings)
        try:
            inputs = AreaInputs(env.repository, env.terminology, settings.hl7_journal)
            columns = (TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("Report", total=2 * len(areas) + len(formats))

                def step(name: str) -> None:
                    progress.update(task, advance=1, description=f"Report: {name}")

                data = gather(inputs, when, areas=areas, step=step)
                report = steering_report(data, title=title)
                out.mkdir(parents=True, exist_ok=True)
                written: list[Path] = []
                for kind in formats:
                    path = out / report_name(when.label, kind)
                    if kind == "pdf":
                        path.write_bytes(render_pdf(report))
                    else:
                        path.write_text(render_html(report), encoding="utf-8")
                    written.append(path)
                    step(f"wrote {path.name}")
        finally:
            env.repository.close()
            if env.terminology is not None:
                env.terminology.close()
        _print_summary(console, data)
        for path in written:
            typer.echo(str(path))
