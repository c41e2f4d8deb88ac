"""``cmio ehr-use``, ``cmio cost``, ``cmio data-quality``: the oversight measures.

Each reads the store (``--source store``) or a Bulk Data NDJSON/Parquet folder,
runs the measure SQL on DuckDB (default), PostgreSQL or Spark, writes every
output table to ``--out`` (Parquet or CSV) and prints a summary. Definitions:
``docs/measures.md`` and :mod:`cmio.measures.ehr_use`, :mod:`cmio.measures.cost`,
:mod:`cmio.measures.adherence`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

    from cmio.measures.ehr_use.engine import SqlEngine

__all__ = ["register", "sync_audit_events", "write_outputs"]

_Source = Annotated[
    str, typer.Option("--source", help="'store' or a folder of NDJSON/Parquet (Bulk layout)")
]
_State = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="DuckDB file keeping the inputs and intermediate tables (DuckDB engine): the"
        " first run builds it from the source, later runs add the source's rows (e.g. a"
        " day's NDJSON) and refresh the results incrementally",
    ),
]
_Database = Annotated[
    str | None,
    typer.Option("--database", help="Store URL for --source store (default: $CMIO_DATABASE_URL)"),
]
_Engine = Annotated[
    str, typer.Option("--engine", help="Where the measure SQL runs: duckdb, postgres or spark")
]
_EngineUrl = Annotated[
    str | None, typer.Option("--engine-url", help="PostgreSQL URL for --engine postgres")
]
_Format = Annotated[str, typer.Option("--format", help="Output tables as parquet or csv")]


def write_outputs(tables: Mapping[str, pa.Table], out: Path, fmt: str) -> list[Path]:
    """Write each table to ``out/<name>.parquet`` (or ``.csv``); returns the paths."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path)
        else:
            pcsv.write_csv(table, path)
        paths.append(path)
    return paths


def _resolve_source(source: str, database: str | None, *, searchable: bool = False) -> Any:
    if source == "store":
        from cmio.store import default_database_url, open_repository

        url = database or default_database_url()
        if not searchable:
            return open_repository(url)
        from cmio.indexing import SearchIndexer
        from cmio.model import load_model

        return open_repository(url, indexer=SearchIndexer(load_model()))
    if not Path(source).exists():
        raise typer.BadParameter(f"{source}: no such file or folder", param_hint="--source")
    return Path(source)


def sync_audit_events(repository: Any) -> int:
    """Copy cmio's own audit records still missing as AuditEvent resources (the work of
    ``cmio audit index``) so the EHR-use measures see them; returns how many."""
    from cmio.security.audit import AuditIndex, AuditLog

    return int(AuditIndex(AuditLog(repository)).sync())


def _period(text: str) -> Any:
    from cmio.measures.ehr_use import Period

    try:
        return Period.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None


def _engine(engine: str, url: str | None) -> SqlEngine:
    from cmio.measures.ehr_use import ENGINES, SqlEngine

    if engine not in ENGINES:
        raise typer.BadParameter(f"one of {', '.join(ENGINES)}", param_hint="--engine")
    if engine == "postgres" and not url:
        raise typer.BadParameter("--engine postgres needs --engine-url", param_hint="--engine-url")
    return SqlEngine(engine, database=url)


@contextmanager
def _steps(console: Console, title: str, total: int) -> Iterator[Callable[[str], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(title, total=total)

        def step(name: str) -> None:
            progress.update(task, advance=1, description=f"{title}: {name}")

        yield step
        progress.update(task, completed=total, description=f"{title}: done")


def _summary(console: Console, title: str, table: pa.Table, columns: list[str], rows: int) -> None:
    from rich.table import Table

    view = Table(title=title)
    for name in columns:
        view.add_column(name, justify="left" if name in _TEXT else "right")
    for row in table.slice(0, rows).to_pylist():
        view.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(view)


_TEXT = frozenset({"month", "specialty", "department", "population", "resource_type", "source",
                   "metric", "user_id"})  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add ``ehr-use``, ``cost`` and ``data-quality`` to the CLI."""

    @app.command("ehr-use")
    def ehr_use_cmd(
        period: Annotated[str, typer.Option("--period", help="e.g. 2026-01/2026-12")],
        source: _Source = "store",
        audit_csv: Annotated[
            list[Path] | None,
            typer.Option("--audit-csv", help="Vendor audit-log CSV (repeatable)", exists=True),
        ] = None,
        no_audit_events: Annotated[
            bool, typer.Option("--no-audit-events", help="Ignore the source's AuditEvents")
        ] = False,
        timeout: Annotated[
            int, typer.Option("--timeout", help="Session inactivity timeout in seconds", min=0)
        ] = 300,
        out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("ehr-use"),
        fmt: _Format = "parquet",
        engine: _Engine = "duckdb",
        engine_url: _EngineUrl = None,
        database: _Database = None,
        state: _State = None,
    ) -> None:
        """Physician EHR use (Sinsky et al. 2020): EHR-Time8, WOW8, Note-, Prescription- and
        Inbox-Time8, teamwork for orders, undivided attention."""
        from rich.console import Console

        from cmio.measures.ehr_use import SessionRules, compute_ehr_use
        from cmio.measures.ehr_use.inputs import view_definitions

        console = Console(stderr=True)
        when, resolved = _period(period), _resolve_source(source, database, searchable=True)
        _check_format(fmt)
        if source == "store" and not no_audit_events:
            copied = sync_audit_events(resolved)
            console.print(f"{copied:,} audit records copied to AuditEvent resources")
        with (
            _engine(engine, engine_url) as sql,
            _steps(console, "EHR use", len(view_definitions()) + 10) as step,
        ):
            if state is not None:
                from cmio.measures.ehr_use.incremental import ehr_use_state
                from cmio.measures.ehr_use.metrics import read_ehr_inputs

                _need_duckdb(engine)
                inputs = read_ehr_inputs(
                    resolved,
                    audit_csv=audit_csv or [],
                    audit_events=not no_audit_events,
                    progress=step,
                )
                step("refresh")
                tables, refreshed = ehr_use_state(state, inputs, when, SessionRules(timeout))
                console.print(f"{'refreshed' if refreshed else 'built'} {state}")
            else:
                tables = compute_ehr_use(
                    resolved, when, engine=sql, audit_csv=audit_csv or [],
                    audit_events=not no_audit_events, rules=SessionRules(timeout),
                    progress=step,
                )  # fmt: skip
        paths = write_outputs(tables, out, fmt)
        _summary(console, "Physician EHR use by specialty (hours per 8 h scheduled)",
                 tables["specialties"], ["specialty", "ehr_time8", "wow8", "note_time8",
                                         "inbox_time8", "teamwork_orders",
                                         "undivided_attention"], 20)  # fmt: skip
        console.print(f"{len(paths)} tables in {out}")

    @app.command("cost")
    def cost_cmd(
        period: Annotated[str, typer.Option("--period", help="e.g. 2026-01/2026-12")],
        source: _Source = "store",
        populations: Annotated[
            str | None,
            typer.Option(
                "--populations",
                help="'cms122' (evaluate CMS122) or a patient_id,population CSV/Parquet file",
            ),
        ] = None,
        out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("cost"),
        fmt: _Format = "parquet",
        engine: _Engine = "duckdb",
        engine_url: _EngineUrl = None,
        database: _Database = None,
        state: _State = None,
    ) -> None:
        """Cost of care from ExplanationOfBenefit/Claim: totals, PMPM and breakdowns."""
        from rich.console import Console

        from cmio.measures.cost import cms122_populations, cost_of_care, cost_views, read_cost

        console = Console(stderr=True)
        when, resolved = _period(period), _resolve_source(source, database)
        _check_format(fmt)
        with (
            _engine(engine, engine_url) as sql,
            _steps(console, "Cost", len(cost_views()) + 2) as step,
        ):
            membership = None
            if populations == "cms122":
                step("CMS122")
                membership = cms122_populations(resolved, when)
            elif populations:
                membership = _read_table(Path(populations))
            inputs = read_cost(resolved, progress=step)
            step("SQL")
            if state is not None:
                from cmio.measures.cost_incremental import cost_state

                _need_duckdb(engine)
                tables, refreshed = cost_state(state, inputs, when, membership)
                console.print(f"{'refreshed' if refreshed else 'built'} {state}")
            else:
                tables = cost_of_care(inputs, when, sql, populations=membership)
        paths = write_outputs(tables, out, fmt)
        _summary(console, "Cost of care", tables["totals"],
                 ["claims", "patients", "allowed", "member_months", "pmpm"], 1)  # fmt: skip
        _summary(console, "Cost by population", tables["populations"],
                 ["population", "patients", "member_months", "pmpm"], 10)  # fmt: skip
        console.print(f"{len(paths)} tables in {out}")

    @app.command("data-quality")
    def data_quality_cmd(
        source: _Source = "store",
        terminology_db: Annotated[
            Path, typer.Option("--terminology-db", help="Concept store file (if present)")
        ] = Path("cmio-data/terminology.db"),
        out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("data-quality"),
        fmt: _Format = "parquet",
        engine: _Engine = "duckdb",
        engine_url: _EngineUrl = None,
        database: _Database = None,
        state: _State = None,
    ) -> None:
        """Standards adherence and data quality, with a score per resource type and source."""
        from rich.console import Console

        from cmio.measures.adherence import Standards, data_quality, read_adherence
        from cmio.terminology.factory import open_terminology

        console = Console(stderr=True)
        resolved = _resolve_source(source, database)
        _check_format(fmt)
        repository = resolved if source == "store" else None
        service = open_terminology(repository, terminology_db)
        try:
            plan = Standards()
            steps = len(plan.resource_types) + len(plan.elements) + 4
            with _engine(engine, engine_url) as sql, _steps(console, "Data quality", steps) as step:
                inputs = read_adherence(resolved, plan, progress=step)
                step("terminology, SQL")
                if state is not None:
                    from cmio.measures.adherence_incremental import data_quality_state

                    _need_duckdb(engine)
                    tables, refreshed = data_quality_state(state, inputs, service.resources, plan)
                    console.print(f"{'refreshed' if refreshed else 'built'} {state}")
                else:
                    tables = data_quality(inputs, sql, service.resources, plan)
        finally:
            service.close()
        paths = write_outputs(tables, out, fmt)
        _summary(console, "Data-quality score", tables["score"],
                 ["resource_type", "source", "coding_share", "validity_share",
                  "completeness_share", "ucum_share", "score"], 40)  # fmt: skip
        console.print(f"{tables['duplicates'].num_rows} suspected duplicate patient pairs")
        console.print(f"{len(paths)} tables in {out}")


def _need_duckdb(engine: str) -> None:
    if engine != "duckdb":
        raise typer.BadParameter("--state keeps its tables in DuckDB (use --engine duckdb)")


def _check_format(fmt: str) -> None:
    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("parquet or csv", param_hint="--format")


def _read_table(path: Path) -> pa.Table:
    import pyarrow as pa_
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file", param_hint="--populations")
    table = pq.read_table(path) if path.suffix.lower() == ".parquet" else pcsv.read_csv(path)
    missing = {"patient_id", "population"} - set(table.column_names)
    if missing:
        raise typer.BadParameter(f"{path} lacks {', '.join(sorted(missing))}",
                                 param_hint="--populations")  # fmt: skip
    schema = pa_.schema([("patient_id", pa_.string()), ("population", pa_.string())])
    return table.select(["patient_id", "population"]).cast(schema)
