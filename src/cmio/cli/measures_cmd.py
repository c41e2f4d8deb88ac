"""``cmio measures list`` and ``cmio measures run``: the quality measures (eCQMs).

``run`` evaluates the measures over the store or a Bulk NDJSON/Parquet folder on DuckDB,
PostgreSQL or Spark and writes, per measure, the summary and subject-list
MeasureReports (https://hl7.org/fhir/R4/measurereport.html) and the per-patient table,
plus the per-stratum counts and the care gaps of every measure. See ``docs/measures.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "write_results"]


def write_results(results: list[Any], out: Path) -> list[Path]:
    """Write MeasureReports and tables of evaluated measures into ``out``.

    Files: ``MeasureReport-<id>-summary.json``, ``MeasureReport-<id>-subject-list.json``,
    ``members-<id>.parquet`` (one row per initial-population patient), ``strata.parquet``
    and ``care-gaps.parquet`` / ``care-gaps.csv``.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from cmio.measures.caregaps import care_gaps_table
    from cmio.measures.report import measure_report

    out.mkdir(parents=True, exist_ok=True)
    written = []
    strata = []
    for result in results:
        for kind in ("summary", "subject-list"):
            path = out / f"MeasureReport-{result.measure.id}-{kind}.json"
            path.write_text(json.dumps(measure_report(result, kind), indent=1), encoding="utf-8")
            written.append(path)
        path = out / f"members-{result.measure.id}.parquet"
        pq.write_table(result.members, path)
        written.append(path)
        table = result.strata
        measure = pa.array([result.measure.id] * table.num_rows, pa.string())
        strata.append(
            pa.table(
                {
                    "measure": measure,
                    "stratifier": table["stratifier"],
                    "stratum": table["stratum"],
                    "initial_population": table["initial_population"],
                    "denominator": _column(table, "denominator"),
                    "numerator": _column(table, "numerator"),
                    "score": table["score"],
                }
            )
        )
    if strata:
        path = out / "strata.parquet"
        pq.write_table(pa.concat_tables(strata), path)
        written.append(path)
    gaps = care_gaps_table(results)
    pq.write_table(gaps, out / "care-gaps.parquet")
    pcsv.write_csv(gaps, out / "care-gaps.csv")
    written += [out / "care-gaps.parquet", out / "care-gaps.csv"]
    return written


def _column(table: Any, name: str) -> Any:
    import pyarrow as pa

    if name in table.column_names:
        return table[name]
    return pa.array([None] * table.num_rows, pa.int64())


def register(app: typer.Typer) -> None:
    """Add the ``measures`` command group to the ``cmio`` app."""
    group = typer.Typer(no_args_is_help=True, help="Quality measures (eCQMs): list and run")
    app.add_typer(group, name="measures")

    @group.command("list")
    def list_measures() -> None:
        """List the shipped measures."""
        from rich.console import Console
        from rich.table import Table

        from cmio.measures import builtin_measures

        table = Table("id", "eCQM", "scoring", "title")
        for measure in builtin_measures().values():
            table.add_row(measure.id, measure.identifier, measure.scoring, measure.title)
        Console().print(table)

    @group.command("run")
    def run(
        period: Annotated[
            str, typer.Option("--period", help="Measurement period YYYY-MM-DD/YYYY-MM-DD")
        ],
        engine: Annotated[
            str, typer.Option("--engine", help="duckdb (default), spark or postgres")
        ] = "duckdb",
        source: Annotated[
            str,
            typer.Option("--source", help="'store' or a Bulk NDJSON/Parquet folder"),
        ] = "store",
        out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path(
            "cmio-data/measures"
        ),
        measure: Annotated[
            list[str] | None, typer.Option("--measure", help="Measure id (repeat; default: all)")
        ] = None,
        definition: Annotated[
            list[Path] | None,
            typer.Option("--definition", help="Extra measure: YAML or Measure JSON (repeat)"),
        ] = None,
        database: Annotated[
            str | None,
            typer.Option(
                "--database",
                help="Store URL for --source store; PostgreSQL URL for --engine postgres",
            ),
        ] = None,
    ) -> None:
        """Evaluate the measures and write MeasureReports, tables and care gaps."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from cmio.measures import (
            MeasureDefinitionError,
            Period,
            builtin_measures,
            evaluate_measures,
            load_measure,
        )
        from cmio.measures.valuesets import ValueSetError

        console = Console()
        try:
            parsed = Period.parse(period)
            chosen = builtin_measures()
            if measure:
                unknown = [m for m in measure if m not in chosen]
                if unknown:
                    raise typer.BadParameter(f"unknown measure(s): {', '.join(unknown)}")
                chosen = {k: v for k, v in chosen.items() if k in measure}
            for path in definition or []:
                extra = load_measure(path)
                chosen[extra.id] = extra
        except (ValueError, MeasureDefinitionError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        data: Any
        if source == "store":
            from cmio.store import default_database_url, open_repository

            data = open_repository(database or default_database_url())
        else:
            data = Path(source)
            if not data.exists():
                console.print(f"[red]{source}: no such folder[/red]")
                raise typer.Exit(2)
        pg_url = database if engine == "postgres" else None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("tables", total=len(chosen) + 1)

            def advance(label: str) -> None:
                progress.update(task, advance=1, description=label)

            try:
                results = evaluate_measures(
                    list(chosen.values()), parsed, data, engine, database=pg_url, progress=advance
                )
            except (ValueError, MeasureDefinitionError, ValueSetError) as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(1) from exc
        written = write_results(results, out)
        table = Table("measure", "IP", "DEN", "DENEX", "NUM", "DENEXCEP", "score")
        for result in results:
            c = result.counts
            score = "-" if result.score is None else f"{result.score:.1%}"
            table.add_row(
                result.measure.id,
                *(
                    str(c.get(k, "-"))
                    for k in (
                        "initial_population",
                        "denominator",
                        "denominator_exclusion",
                        "numerator",
                        "denominator_exception",
                    )
                ),
                score,
            )
        console.print(table)
        console.print(f"{len(written)} files in {out}")
