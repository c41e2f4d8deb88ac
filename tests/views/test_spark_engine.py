"""Spark engine plan details: ``getReferenceKey`` without a regex, columns below the explode.

The Spark dialect reads reference keys with ``substring_index`` (the regex only for
versioned references) and computes a view's one-row columns once per resource, below
the ``explode`` of its forEach rows. Both must give DuckDB's rows (the regex's answers:
a reference whose last two segments are not both non-empty has no key) on the JSON text
and on typed Parquet, and the reference evaluator's on well-formed references. Typed
Parquet is read with only the nested fields the view names (``cmio.views.spark_prune``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pytest
from sqlglot import exp

from cmio.views import DuckDbRunner, MemoryEvaluator, load_view, ndjson_to_parquet, spark_engine
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.spark import SparkDialect
from cmio.views.spark_engine import spark_frame, spark_run
from cmio.views.spark_prune import file_schema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REFERENCES = [
    "Patient/1",
    "http://example.org/fhir/Patient/2",
    "Patient/3/_history/4",
    "http://example.org/fhir/Group/5/_history/6",
    "Group/7",
    "Patient/",
    "/Patient/8",
    "Patient//9",
    "a//b",
    "10",
    "",
    "Patient",
    "x/Patient/11/",
]

VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "string"},
                {"name": "any", "path": "subject.getReferenceKey()", "type": "string"},
            ]
        },
        {
            "forEach": "code.coding",
            "column": [{"name": "code", "path": "code", "type": "code"}],
        },
    ],
    "where": [{"path": "status = 'final'"}],
}


def _resources() -> list[dict[str, Any]]:
    out = []
    for n, reference in enumerate(REFERENCES):
        out.append(
            {
                "resourceType": "Observation",
                "id": f"o{n}",
                "status": "final" if n != 4 else "preliminary",
                "code": {"coding": [{"code": f"c{k}"} for k in range(n % 3)]},
                "subject": {"reference": reference},
            }
        )
    return out


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: orjson.dumps(row, option=orjson.OPT_SORT_KEYS))


def test_reference_keys_and_foreach_match_the_reference_evaluator(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = load_view(VIEW)
    resources = _resources()
    expected = _sorted(DuckDbRunner().run(view, resources))
    assert len(expected) > 5  # the forEach gives 0, 1 and 2 rows per resource
    well_formed = resources[:5]  # where the SQL engines and the reference evaluator agree
    assert _sorted(DuckDbRunner().run(view, well_formed)) == _sorted(
        MemoryEvaluator().run(view, well_formed)
    )
    folder = tmp_path / "ndjson"
    folder.mkdir()
    (folder / "Observation.ndjson").write_bytes(
        b"".join(orjson.dumps(r) + b"\n" for r in resources)
    )
    typed = tmp_path / "typed"
    ndjson_to_parquet(folder, typed, layout="typed")
    assert _sorted(spark_run(view, resources, spark)) == expected
    assert _sorted(spark_run(view, typed, spark)) == expected
    # the footer's schema read in Python is the one Spark infers
    file = str(next(typed.glob("*.parquet")))
    assert file_schema(file) == spark.read.parquet(file).schema
    # typed Parquet is read with only the fields the view names, through the lambda
    frame = spark_frame(view, typed, spark, layout="typed")
    plan = frame._jdf.queryExecution().executedPlan().toString()
    read = plan[plan.index("ReadSchema:") :]
    assert read.startswith("ReadSchema: struct<id:string,status:string,")
    assert "code:struct<coding:array<struct<code:string>>>" in read
    # a path the walk misses fails analysis: the full schema is read instead
    monkeypatch.setattr(spark_engine, "read_paths", lambda sql: {("id",)})
    assert _sorted(spark_run(view, typed, spark)) == expected


def test_regex_only_for_versioned_references_and_columns_below_the_explode() -> None:
    sql = ViewCompiler(SparkDialect()).sql(load_view(VIEW), exp.to_table("t"), filter_type=False)
    explode = sql.index("EXPLODE(")
    # the one-row columns are computed in the subquery the explode reads
    assert "SUBSTRING_INDEX" not in sql[:explode]
    assert "SUBSTRING_INDEX" in sql[explode:]
    # each key takes the regex only for a versioned reference
    assert sql.count("CASE WHEN CONTAINS(_p4, '/_history/') THEN") == 2
    unversioned = sql.split("WHEN CONTAINS(_p4, '/') AND ")[1:]
    assert len(unversioned) == 2
    assert all("REGEXP" not in part.split(" END")[0] for part in unversioned)


def test_parquet_written_by_spark_holds_the_rows(spark: SparkSession, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from cmio.views import arrow_schema
    from cmio.views.spark_engine import spark_write

    view = load_view(VIEW)
    resources = _resources()
    spark_write(view, resources, tmp_path / "out", spark)
    parts = sorted((tmp_path / "out").glob("*.parquet"))
    assert parts
    schema = arrow_schema(view)
    written = pa.concat_tables([pq.read_table(p).cast(schema) for p in parts])
    assert _sorted(written) == _sorted(DuckDbRunner().run(view, resources))


def test_one_parquet_file_from_spark_part_files(spark: SparkSession, tmp_path: Path) -> None:
    """Spark's part files merge into one file (row groups copied in order), and
    ``spark_parquet_file`` writes the view's rows there without collecting them."""
    import pyarrow.parquet as pq

    from cmio.views import arrow_schema
    from cmio.views.spark_output import merge_parquet_parts, spark_parquet_file

    view = load_view(VIEW)
    resources = _resources()
    schema = arrow_schema(view)
    expected = _sorted(DuckDbRunner().run(view, resources))
    frame = spark_frame(view, resources, spark).repartition(3)
    frame.write.parquet(str(tmp_path / "parts"))
    parts = sorted((tmp_path / "parts").glob("part-*.parquet"))
    assert len(parts) == 3
    assert merge_parquet_parts(spark, parts, tmp_path / "merged.parquet") == len(expected)
    merged = pq.ParquetFile(tmp_path / "merged.parquet")
    assert merged.metadata.num_row_groups == sum(pq.ParquetFile(p).num_row_groups for p in parts)
    in_order = pa.concat_tables([pq.read_table(p) for p in parts])
    assert merged.read().to_pylist() == in_order.to_pylist()
    assert _sorted(merged.read().cast(schema)) == expected

    out = tmp_path / "sub" / "view.parquet"
    assert spark_parquet_file(view, resources, out, spark) == len(expected)
    assert _sorted(pq.read_table(out).cast(schema)) == expected
    assert [p.name for p in out.parent.iterdir()] == ["view.parquet"]  # no scratch left
