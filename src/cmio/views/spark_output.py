"""One Parquet file of a view's rows written by Spark's own writer (nothing collected).

:func:`spark_parquet_file` is what ``cmio view run --engine spark --out X.parquet``
runs: Spark writes its part files in parallel (:func:`cmio.views.spark_engine.spark_write`,
one task per input split, so both cores of ``local[2]`` write), then the parts' row
groups are copied byte for byte into the one file the caller named with parquet-mr's
``ParquetFileWriter.appendFile`` (no decoding or re-encoding; the footer keeps Spark's
schema metadata). See https://parquet.apache.org/docs/file-format/ and
https://spark.apache.org/docs/latest/sql-data-sources-parquet.html.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from cmio.views.spark_engine import SparkViewError, spark_write
from cmio.views.tree import View

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["merge_parquet_parts", "spark_parquet_file"]

_ROW_GROUP = 128 * 1024 * 1024
"""Row group size the merged file announces (Spark's ``parquet.block.size`` default)."""


def spark_parquet_file(
    view: View | Mapping[str, Any],
    source: Any,
    out: Path,
    spark: SparkSession,
) -> int:
    """Write the view's rows to the one Parquet file ``out`` with Spark's writer.

    The part files go to a scratch folder beside ``out`` (same file system), are
    merged into a scratch file, and that file replaces ``out`` atomically: a failed
    run leaves no partial ``out``.

    Args:
        view: a parsed view or ViewDefinition JSON.
        source: an NDJSON/Parquet folder or file, resources, or a Repository
            (see :func:`cmio.views.spark_engine.spark_frame`).
        out: the file to (over)write.
        spark: the session.

    Returns:
        The number of rows written.

    Raises:
        cmio.views.spark_engine.SparkViewError: Spark failed the query.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.spark-{uuid.uuid4().hex[:12]}"
    try:
        spark_write(view, source, scratch / "parts", spark)
        # by task number (``part-00012-...``), not as text: part-100000 follows part-99999
        parts = sorted(
            (scratch / "parts").glob("part-*.parquet"), key=lambda p: int(p.name.split("-")[1])
        )
        merged = scratch / "merged.parquet"
        try:
            rows = merge_parquet_parts(spark, parts, merged)
        except Exception as exc:  # a JVM error (Py4J) or no part files
            raise SparkViewError(f"writing {out.name} failed: {exc}") from exc
        os.replace(merged, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def merge_parquet_parts(spark: SparkSession, parts: list[Path], out: Path) -> int:
    """Copy the row groups of Spark's part files, in order, into one Parquet file ``out``.

    The parts of one write share one schema; their row groups are appended without
    decoding (``ParquetFileWriter.appendFile``) and the first part's key-value
    metadata (Spark's row schema) goes into the new footer. One part is moved as is.

    Returns:
        The number of rows in ``out``.

    Raises:
        ValueError: no part files.
    """
    if not parts:
        raise ValueError("Spark wrote no part files")
    rows = sum(int(pq.ParquetFile(part).metadata.num_rows) for part in parts)
    if len(parts) == 1:
        shutil.move(str(parts[0]), out)
        return rows
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    hadoop = jvm.org.apache.parquet.hadoop

    def input_file(path: Path) -> Any:
        return hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(str(path)), conf)

    reader = hadoop.ParquetFileReader.open(input_file(parts[0]))
    try:
        meta = reader.getFileMetaData()
        schema, extra = meta.getSchema(), meta.getKeyValueMetaData()
    finally:
        reader.close()
    target = hadoop.util.HadoopOutputFile.fromPath(jvm.org.apache.hadoop.fs.Path(str(out)), conf)
    mode = getattr(hadoop, "ParquetFileWriter$Mode").OVERWRITE
    writer = hadoop.ParquetFileWriter(target, schema, mode, _ROW_GROUP, 0)
    writer.start()
    try:
        for part in parts:
            writer.appendFile(input_file(part))
        writer.end(extra)
    except BaseException:
        writer.close()  # releases the file (end() closes it when all went well)
        raise
    return rows
