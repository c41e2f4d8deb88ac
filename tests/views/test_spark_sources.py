"""Spark sources: NDJSON, Parquet (JSON text and typed), resources, Delta detection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cmio.views.spark_session import SparkConfig, local_cores
from cmio.views.spark_sources import (
    SparkSourceError,
    delta_available,
    resource_files,
    spark_resources,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PATIENTS = [
    {"resourceType": "Patient", "id": f"p{n}", "gender": "female" if n % 2 else "male"}
    for n in range(5)
]
OBS = [
    {"resourceType": "Observation", "id": f"o{n}", "status": "final", "valueInteger": n}
    for n in range(3)
]


def _ids(frame: DataFrame) -> list[str]:
    return sorted(orjson.loads(row[0])["id"] for row in frame.collect())


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources) + b"\n")


def test_local_cores_and_settings() -> None:
    assert local_cores("local") == 1
    assert local_cores("local[3]") == 3
    assert local_cores("spark://host:7077") is None
    settings = SparkConfig(master="local[3]").settings()
    assert settings["spark.sql.shuffle.partitions"] == "6"
    assert settings["spark.ui.enabled"] == "false"
    assert settings["spark.driver.extraJavaOptions"] == "-XX:+UseParallelGC"
    cluster = SparkConfig(master="yarn").settings()
    assert "spark.driver.host" not in cluster
    assert "spark.driver.extraJavaOptions" not in cluster  # the cluster's own choice
    # the caller's settings win
    own = SparkConfig(conf={"spark.driver.extraJavaOptions": "-XX:+UseG1GC"}).settings()
    assert own["spark.driver.extraJavaOptions"] == "-XX:+UseG1GC"


def test_ndjson_folder_by_file_name(spark: SparkSession, tmp_path: Path) -> None:
    _ndjson(tmp_path / "Patient.ndjson", PATIENTS[:3])
    _ndjson(tmp_path / "Patient.002.ndjson", PATIENTS[3:])
    _ndjson(tmp_path / "Observation.ndjson", OBS)
    files, by_name = resource_files(tmp_path, "Patient", (".ndjson",))
    assert by_name and [p.name for p in files] == ["Patient.002.ndjson", "Patient.ndjson"]
    frame = spark_resources(spark, tmp_path, "Patient")
    assert frame.columns == ["resource"]
    assert _ids(frame) == [f"p{n}" for n in range(5)]
    assert _ids(spark_resources(spark, tmp_path / "Observation.ndjson", "Observation")) == [
        "o0",
        "o1",
        "o2",
    ]


def test_mixed_ndjson_is_filtered_on_resource_type(spark: SparkSession, tmp_path: Path) -> None:
    _ndjson(tmp_path / "everything.ndjson", PATIENTS + OBS)
    assert _ids(spark_resources(spark, tmp_path, "Observation")) == ["o0", "o1", "o2"]
    assert _ids(spark_resources(spark, tmp_path, "Encounter")) == []


def test_parquet_json_text_and_typed(spark: SparkSession, tmp_path: Path) -> None:
    text = pa.table(
        {
            "resource_type": [r["resourceType"] for r in PATIENTS + OBS],
            "resource": [orjson.dumps(r).decode() for r in PATIENTS + OBS],
        }
    )
    pq.write_table(text, tmp_path / "all.parquet")
    assert _ids(spark_resources(spark, tmp_path / "all.parquet", "Observation")) == [
        "o0",
        "o1",
        "o2",
    ]
    typed_dir = tmp_path / "typed"
    typed_dir.mkdir()
    pq.write_table(pa.Table.from_pylist(PATIENTS), typed_dir / "Patient.parquet")
    frame = spark_resources(spark, typed_dir, "Patient")
    rows = [orjson.loads(r[0]) for r in frame.collect()]
    assert sorted(rows, key=lambda r: r["id"]) == PATIENTS


def test_iterable_of_resources(spark: SparkSession) -> None:
    assert _ids(spark_resources(spark, PATIENTS + OBS, "Patient")) == [f"p{n}" for n in range(5)]


def test_bad_sources_are_named(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(SparkSourceError, match="does not exist"):
        spark_resources(spark, tmp_path / "missing", "Patient")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SparkSourceError, match="no NDJSON or Parquet"):
        spark_resources(spark, tmp_path / "empty", "Patient")
    delta = tmp_path / "table"
    (delta / "_delta_log").mkdir(parents=True)
    if not delta_available():
        with pytest.raises(SparkSourceError, match="delta-spark is not installed"):
            spark_resources(spark, delta, "Patient")
