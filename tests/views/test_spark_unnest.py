"""``explode_items``: a forEach's items exploded directly on Spark, not a list of row structs.

The rewrite applies only to a view whose one list of rows is a plain forEach projecting
each item (no position); everything else keeps the compiled query. The rows stay
DuckDB's (the conformance suite runs every case through it too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from sqlglot import exp

from cmio.views import DuckDbRunner, load_view
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.spark import SparkDialect
from cmio.views.dialects.spark_typed import TypedSparkDialect
from cmio.views.spark_engine import spark_frame, spark_run, spark_sql
from cmio.views.spark_unnest import explode_items

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession


def _view(select: list[dict[str, Any]]) -> dict[str, Any]:
    head = {"column": [{"name": "id", "path": "id", "type": "id"}]}
    return {"resourceType": "ViewDefinition", "resource": "Patient", "select": [head, *select]}


NAMES = {"forEach": "name", "column": [{"name": "family", "path": "family", "type": "string"}]}
PLAIN = _view([NAMES])
OR_NULL = _view([{**NAMES, "forEach": None, "forEachOrNull": "name"}])
NESTED = _view(
    [
        {
            "forEach": "name",
            "select": [
                {"forEach": "given", "column": [{"name": "g", "path": "$this", "type": "string"}]}
            ],
        }
    ]
)
POSITION = _view(
    [{**NAMES, "column": [*NAMES["column"], {"name": "n", "path": "%rowIndex", "type": "integer"}]}]
)
PATIENTS = [
    {"resourceType": "Patient", "id": "a", "name": [{"family": "F", "given": ["G", "H"]}]},
    {"resourceType": "Patient", "id": "b", "name": [{"family": "E"}, {"given": ["I"]}]},
    {"resourceType": "Patient", "id": "c"},
    {"resourceType": "Patient", "id": "d", "name": []},
]


def _clean(view: dict[str, Any]) -> dict[str, Any]:
    select = [{k: v for k, v in s.items() if v is not None} for s in view["select"]]
    return {**view, "select": select}


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: orjson.dumps(row, option=orjson.OPT_SORT_KEYS))


def test_only_a_plain_foreach_is_rewritten() -> None:
    for dialect in (SparkDialect(), TypedSparkDialect()):
        compiler = ViewCompiler(dialect)
        for view, rewritten in ((PLAIN, True), (OR_NULL, False), (NESTED, False)):
            query = compiler.compile(load_view(_clean(view)), exp.to_table("t"), filter_type=False)
            assert (explode_items(query) is not query) is rewritten
    sql = spark_sql(load_view(PLAIN), "t")
    assert "TRANSFORM(" not in sql
    assert "EXPLODE(_rowlist) AS _f" in sql
    query = ViewCompiler(SparkDialect()).compile(
        load_view(_clean(POSITION)), exp.to_table("t"), filter_type=False
    )
    assert explode_items(query) is query  # %rowIndex: the position is used


def test_rows_unchanged_and_the_list_built_once(spark: SparkSession, tmp_path: Path) -> None:
    for view in (PLAIN, OR_NULL, NESTED, POSITION):
        parsed = load_view(_clean(view))
        expected = _sorted(DuckDbRunner().run(parsed, PATIENTS))
        assert _sorted(spark_run(parsed, PATIENTS, spark)) == expected, view
    plan = spark_frame(load_view(PLAIN), PATIENTS, spark)._jdf.queryExecution().optimizedPlan()
    assert "transform" not in plan.toString().lower()
