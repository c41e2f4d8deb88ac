"""Write a view's rows to a file: NDJSON, JSON, CSV or Parquet, batch by batch.

The output formats of the SQL on FHIR operations
(https://sql-on-fhir.org/ig/latest/OperationDefinition-ViewDefinitionExport.html):
``ndjson`` (one JSON object per row), ``json`` (one array), ``csv`` (collection
columns as JSON text) and ``parquet`` (the view's Arrow schema, collections as lists).
Decimals are written as JSON numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["OUTPUT_FORMATS", "OutputCancelledError", "write_rows"]

OUTPUT_FORMATS = ("ndjson", "json", "csv", "parquet")
"""The formats :func:`write_rows` writes (also the file suffixes)."""


class OutputCancelledError(Exception):
    """The writer stopped because ``cancelled()`` turned true (the file is incomplete)."""


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, default=_json_value, separators=(",", ":"))


def _csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_list(field.type):
            texts = [
                None if v is None else json.dumps(v, default=_json_value)
                for v in column.to_pylist()
            ]
            columns.append(pa.array(texts, pa.string()))
        else:
            columns.append(column)
    return pa.record_batch(columns, schema=schema)


def write_rows(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    path: Path,
    fmt: str,
    *,
    header: bool = True,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write record batches of ``schema`` to ``path`` in ``fmt``; returns the row count.

    Args:
        batches: the rows (e.g. :meth:`cmio.views.DuckDbRunner.batches`).
        schema: their schema (:func:`cmio.views.arrow_schema`).
        path: the file to (over)write.
        fmt: one of :data:`OUTPUT_FORMATS`.
        header: CSV header line.
        cancelled: checked between batches; when true, raises OutputCancelledError.
        progress: called with the rows written so far, after each batch.

    Raises:
        ValueError: an unknown format.
        OutputCancelledError: ``cancelled()`` returned true.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if fmt == "parquet":
        with pq.ParquetWriter(path, schema) as writer:
            for batch in batches:
                _check(cancelled)
                writer.write_batch(batch)
                count += batch.num_rows
                _report(progress, count)
        return count
    if fmt == "csv":
        csv_schema = pa.schema(
            [pa.field(f.name, pa.string()) if pa.types.is_list(f.type) else f for f in schema]
        )
        options = pacsv.WriteOptions(include_header=header)
        with pacsv.CSVWriter(path, csv_schema, write_options=options) as csv:
            for batch in batches:
                _check(cancelled)
                csv.write_batch(_csv_batch(batch, csv_schema))
                count += batch.num_rows
                _report(progress, count)
        return count
    with path.open("w", encoding="utf-8") as out:
        count = _write_json(out, batches, fmt == "json", cancelled, progress)
    return count


def _write_json(
    out: IO[str],
    batches: Iterable[pa.RecordBatch],
    array: bool,
    cancelled: Callable[[], bool] | None,
    progress: Callable[[int], None] | None,
) -> int:
    count = 0
    if array:
        out.write("[")
    for batch in batches:
        _check(cancelled)
        rows = batch.to_pylist()
        if array:
            text = ",".join(_dumps(row) for row in rows)
            out.write(("," if count and text else "") + text)
        else:
            out.writelines(_dumps(row) + "\n" for row in rows)
        count += len(rows)
        _report(progress, count)
    if array:
        out.write("]")
    return count


def _check(cancelled: Callable[[], bool] | None) -> None:
    if cancelled is not None and cancelled():
        raise OutputCancelledError("cancelled")


def _report(progress: Callable[[int], None] | None, count: int) -> None:
    if progress is not None:
        progress(count)
