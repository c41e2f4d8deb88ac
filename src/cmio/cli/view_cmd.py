"""``cmio view run``: run a SQL on FHIR ViewDefinition and write the table.

See https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "write_table"]

_FORMATS = (".parquet", ".csv", ".ndjson", ".jsonl")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


class _Writer:
    """Writes record batches to Parquet, CSV or NDJSON (chosen by the file suffix)."""

    def __init__(self, out: Path, schema: Any) -> None:
        import pyarrow as pa

        self.out = out
        self.suffix = out.suffix.lower()
        self.schema = schema
        self.lists = [i for i, f in enumerate(schema) if pa.types.is_list(f.type)]
        self._handle: Any = None
        out.parent.mkdir(parents=True, exist_ok=True)
        if self.suffix == ".parquet":
            import pyarrow.parquet as pq

            self._handle = pq.ParquetWriter(out, schema)
        elif self.suffix == ".csv":
            import pyarrow.csv as pcsv

            fields = [
                pa.field(f.name, pa.string()) if i in self.lists else f
                for i, f in enumerate(schema)
            ]
            self.csv_schema = pa.schema(fields)
            self._handle = pcsv.CSVWriter(out, self.csv_schema)
        else:
            self._handle = out.open("w", encoding="utf-8")

    def write(self, batch: Any) -> None:
        import pyarrow as pa

        if self.suffix == ".parquet":
            self._handle.write_batch(batch)
        elif self.suffix == ".csv":
            columns = []
            for i, column in enumerate(batch.columns):
                if i in self.lists:
                    texts = [
                        None if v is None else json.dumps(v, default=_json_default)
                        for v in column.to_pylist()
                    ]
                    columns.append(pa.array(texts, pa.string()))
                else:
                    columns.append(column)
            self._handle.write_batch(pa.record_batch(columns, schema=self.csv_schema))
        else:
            for row in batch.to_pylist():
                self._handle.write(
                    json.dumps(row, default=_json_default, separators=(",", ":")) + "\n"
                )

    def close(self) -> None:
        self._handle.close()


def write_table(batches: Iterator[Any], schema: Any, out: Path) -> int:
    """Write record batches to ``out`` (``.parquet``, ``.csv`` or ``.ndjson``); returns the row count."""
    writer = _Writer(out, schema)
    count = 0
    try:
        for batch in batches:
            writer.write(batch)
            count += batch.num_rows
    finally:
        writer.close()
    return count


def register(app: typer.Typer) -> None:
    """Add the ``view`` command group (``cmio view run``) to the CLI."""
    group = typer.Typer(no_args_is_help=True, help="SQL on FHIR views")
    app.add_typer(group, name="view")

    @group.command("run")
    def run_view(
        view: Annotated[Path, typer.Argument(help="ViewDefinition JSON file")],
        source: Annotated[
            str,
            typer.Option(
                "--source", help="'store' or a folder/file of NDJSON or Parquet (Bulk layout)"
            ),
        ] = "store",
        engine: Annotated[
            str, typer.Option("--engine", help="duckdb (default), spark, postgres or memory")
        ] = "duckdb",
        out: Annotated[
            Path, typer.Option("--out", help="Output file: .parquet, .csv or .ndjson")
        ] = Path("view.parquet"),
        database: Annotated[
            str | None,
            typer.Option(
                "--database", help="Database URL for --source store (default: $CMIO_DATABASE_URL)"
            ),
        ] = None,
        master: Annotated[
            str | None,
            typer.Option("--master", help="Spark master URL for --engine spark (default local)"),
        ] = None,
        deidentify: Annotated[
            bool,
            typer.Option(
                "--deidentify",
                help="Run over a HIPAA Safe Harbor de-identified copy of the source (key: "
                "--deid-key-file or $CMIO_DEID_KEY_FILE)",
            ),
        ] = False,
        deid_key_file: Annotated[
            Path | None, typer.Option("--deid-key-file", help="De-identification key (mode 0600)")
        ] = None,
    ) -> None:
        """Run a ViewDefinition over the store or a Bulk Data folder and write the rows."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from cmio.store import SearchQuery, default_database_url, open_repository
        from cmio.views import (
            DuckDbRunner,
            SourceError,
            ViewDefinitionError,
            arrow_schema,
            load_view,
        )
        from cmio.views import run as run_engine

        console = Console(stderr=True)
        if out.suffix.lower() not in _FORMATS:
            raise typer.BadParameter("use .parquet, .csv or .ndjson", param_hint="--out")
        try:
            parsed = load_view(view)
        except ViewDefinitionError as exc:
            console.print(f"[red]invalid view[/red]: {exc}")
            raise typer.Exit(2) from None
        repository = None
        resolved: Any = source
        total: int | None = None
        if source == "store":
            repository = open_repository(database or default_database_url())
            resolved = repository
            total = repository.search(SearchQuery(parsed.resource, (), count=0)).total
        elif not Path(source).exists():
            raise typer.BadParameter(f"{source}: no such file or folder", param_hint="--source")
        scratch = tempfile.TemporaryDirectory(prefix="cmio-deid-") if deidentify else None
        if scratch is not None:
            resolved = _deidentified_source(parsed.resource, resolved, deid_key_file, scratch.name)
        schema = arrow_schema(parsed)
        columns = [TextColumn("[bold]{task.description}"), SpinnerColumn()]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn()]
        try:
            with Progress(*columns, console=console) as progress:
                task = progress.add_task(
                    f"{parsed.name or parsed.resource} ({engine})", total=total, rows=0
                )
                written = 0

                def batches() -> Iterator[Any]:
                    nonlocal written
                    if engine == "duckdb":
                        stream = DuckDbRunner().batches(
                            parsed, resolved, on_input=lambda n: progress.advance(task, n)
                        )
                    else:
                        options = {"database": database, "master": master}
                        table = run_engine(parsed, resolved, engine=engine, **options)
                        stream = iter(table.to_batches())
                    for batch in stream:
                        written += batch.num_rows
                        progress.update(task, rows=written)
                        yield batch

                local = master is None or master.startswith("local")
                if engine == "spark" and out.suffix.lower() == ".parquet" and local:
                    # Spark's own writer, in parallel; nothing is collected into Python.
                    # Not on a cluster: executors on other hosts would write their part
                    # files to their own disks, not the driver's.
                    count = _spark_parquet(parsed, resolved, out, master)
                    progress.update(task, rows=count)
                else:
                    count = write_table(batches(), schema, out)
                if total is not None:
                    progress.update(task, completed=total)
        except (ViewDefinitionError, SourceError) as exc:
            console.print(f"[red]view failed[/red]: {exc}")
            raise typer.Exit(1) from None
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--engine") from None
        finally:
            if repository is not None:
                repository.close()
            if scratch is not None:
                scratch.cleanup()
        console.print(f"{count:,} rows -> {out}")


def _spark_parquet(view: Any, source: Any, out: Path, master: str | None) -> int:
    """The view's rows written to one Parquet file by Spark's writer (no collection)."""
    from cmio.views.spark_output import spark_parquet_file
    from cmio.views.spark_session import SparkConfig, spark_session

    spark = spark_session(SparkConfig(master=master) if master else None)
    return spark_parquet_file(view, source, out, spark)


def _deidentified_source(resource: str, source: Any, key_file: Path | None, scratch: str) -> Path:
    """A de-identified NDJSON copy of ``source`` (the store or a folder) in ``scratch``."""
    from cmio.model import load_model
    from cmio.security.deid import Deidentifier
    from cmio.security.deid_io import deidentify_folder, deidentify_store
    from cmio.store.base import Repository

    try:
        deid = Deidentifier.load(load_model(), key_file)
    except (LookupError, PermissionError, OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--deidentify") from None
    folder = Path(scratch)
    if isinstance(source, Repository):
        deidentify_store(deid, source, folder, [resource])
    else:
        try:
            deidentify_folder(deid, Path(source), folder)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--source") from None
    return folder
