"""Resources as a Spark DataFrame of JSON text, one row per resource.

Views compile to SQL that reads each resource from one string column of JSON
(``get_json_object``/``from_json`` apply to it), whatever the storage:

* an NDJSON folder or file (a Bulk Data export: ``Observation.ndjson``,
  ``Observation.001.ndjson``, ``.ndjson.gz``; see
  https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format);
* Parquet: a ``resource`` column of JSON text (what :func:`write_parquet`
  writes) or nested typed columns (turned back into JSON with ``to_json``);
* Delta Lake tables, when the ``delta`` package (delta-spark) is importable;
* any iterable of resources (dicts or JSON text) or a store's current resources
  (through the driver: small inputs, tests).

Files named after the resource type are read alone; other files are read and
filtered on ``resourceType``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cmio.store.base import Repository
from cmio.views.spark_session import import_pyspark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "RESOURCE_COLUMN",
    "SparkSourceError",
    "delta_available",
    "resource_files",
    "spark_resources",
]

#: the string column holding one resource's JSON
RESOURCE_COLUMN = "resource"
_NDJSON = (".ndjson", ".ndjson.gz", ".jsonl", ".json")
_PARQUET = (".parquet",)


class SparkSourceError(ValueError):
    """The source cannot be read as FHIR resources."""


def delta_available() -> bool:
    """Whether the ``delta`` (delta-spark) package is importable."""
    try:
        import delta  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def _named_for(name: str, resource_type: str) -> bool:
    """``Observation.ndjson``, ``Observation.003.ndjson``, ``Observation-1.parquet`` ..."""
    return re.match(rf"{re.escape(resource_type)}(?:[._-]\w+)*$", _stem(name)) is not None


def _stem(name: str) -> str:
    for ext in (*_NDJSON, *_PARQUET):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def resource_files(
    folder: Path, resource_type: str, exts: tuple[str, ...]
) -> tuple[list[Path], bool]:
    """The files of ``folder`` (recursively) with one of ``exts``.

    Returns:
        ``(files, by_name)``: the files named after ``resource_type`` when there are
        any (``by_name`` True), else every such file (they need a type filter).
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(exts))
    named = [p for p in files if _named_for(p.name, resource_type)]
    if named:
        return named, True
    # a folder per type (``Observation/part-0.parquet``)
    typed = [p for p in files if resource_type in p.relative_to(folder).parts[:-1]]
    if typed:
        return typed, True
    return files, False


def spark_resources(
    spark: SparkSession,
    source: Path | str | Repository | Iterable[Any],
    resource_type: str,
    *,
    column: str = RESOURCE_COLUMN,
) -> DataFrame:
    """A DataFrame with one string column ``column``: the JSON of each ``resource_type``.

    Args:
        spark: the session (see :func:`cmio.views.spark_session.spark_session`).
        source: an NDJSON/Parquet file or folder, a Delta table folder, resources (dicts
            or JSON text), or a Repository (its current resources, collected through the
            driver: for large stores export to Parquet first).
        resource_type: the view's ``resource``.
        column: the output column name.

    Raises:
        SparkSourceError: the path is missing, holds no readable files, or is a
            Delta table while delta-spark is not installed.
    """
    import_pyspark()
    from pyspark.sql import functions as F

    if isinstance(source, Repository):
        rows = [
            (stored.data.decode(),)
            for stored in source.iter_current([resource_type])
            if stored.data is not None
        ]
        return spark.createDataFrame(rows, f"{column} string")
    if not isinstance(source, str | Path):
        return spark.createDataFrame(_texts(source, resource_type), f"{column} string")
    path = Path(source)
    if not path.exists():
        raise SparkSourceError(f"source {path} does not exist")
    if path.is_dir() and (path / "_delta_log").is_dir():
        if not delta_available():
            raise SparkSourceError(
                f"{path} is a Delta table but delta-spark is not installed"
                " (pip install delta-spark and configure the session for Delta)"
            )
        return _typed(spark.read.format("delta").load(str(path)), resource_type, column, False)
    if path.is_file():
        files, by_name = [path], _named_for(path.name, resource_type)
        parquet = path.name.endswith(_PARQUET)
    else:
        files, by_name = resource_files(path, resource_type, _PARQUET)
        parquet = bool(files)
        if not parquet:
            files, by_name = resource_files(path, resource_type, _NDJSON)
    if not files:
        raise SparkSourceError(f"no NDJSON or Parquet files under {path}")
    names = [str(p) for p in files]
    if parquet:
        return _typed(spark.read.parquet(*names), resource_type, column, by_name)
    frame = spark.read.text(names).withColumnRenamed("value", column)
    frame = frame.where(F.length(F.trim(F.col(column))) > 0)
    if by_name:
        return frame
    return frame.where(F.get_json_object(F.col(column), "$.resourceType") == F.lit(resource_type))


def _texts(resources: Iterable[Any], resource_type: str) -> list[tuple[str]]:
    """Resources (dicts, JSON text or bytes) of ``resource_type`` as one-column rows."""
    rows: list[tuple[str]] = []
    for item in resources:
        if isinstance(item, Mapping):
            if item.get("resourceType") == resource_type:
                rows.append((orjson.dumps(dict(item)).decode(),))
            continue
        text = item.decode() if isinstance(item, bytes) else str(item)
        if orjson.loads(text).get("resourceType") == resource_type:
            rows.append((text,))
    return rows


def _typed(frame: DataFrame, resource_type: str, column: str, by_name: bool) -> DataFrame:
    """Parquet/Delta rows as JSON text: a JSON string column as is, typed columns via to_json."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    fields = {f.name: f.dataType for f in frame.schema.fields}
    for type_column in ("resource_type", "resourceType"):
        if not by_name and isinstance(fields.get(type_column), StringType):
            frame = frame.where(F.col(type_column) == F.lit(resource_type))
            by_name = True
            break
    if isinstance(fields.get(column), StringType):
        text = frame.select(F.col(column))
    else:
        text = frame.select(F.to_json(F.struct(*[F.col(c) for c in frame.columns])).alias(column))
    if by_name:
        return text
    return text.where(F.get_json_object(F.col(column), "$.resourceType") == F.lit(resource_type))
