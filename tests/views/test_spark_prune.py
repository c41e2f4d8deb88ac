"""The read schema of a typed-layout Spark view: only the nested fields the query reads.

``read_paths`` follows aliases, ``coalesce``/``get``/``explode`` and lambda variables
to the source fields a compiled view reads; any other use of a nested value keeps its
whole subtree. ``prune_schema`` cuts the files' schema down to those paths. (The
answers over pruned files are checked against DuckDB in ``test_spark_engine.py``.)
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    StringType,
    StructField,
    StructType,
)
from sqlglot import exp

from cmio.views import ViewDefinitionError, load_view
from cmio.views.compiler import ViewCompiler
from cmio.views.dialects.spark_typed import TypedSparkDialect
from cmio.views.spark_prune import prune_schema, read_paths
from cmio.views.typed import TypedLayoutUnsupported

OBS: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Observation",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id", "type": "id"},
                {"name": "subject", "path": "subject.getReferenceKey(Patient)", "type": "string"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            ]
        },
        {
            "forEach": "code.coding",
            "column": [
                {"name": "system", "path": "system", "type": "uri"},
                {"name": "code", "path": "code", "type": "code"},
            ],
        },
    ],
}


def _sql(view: dict[str, Any]) -> str:
    query = ViewCompiler(TypedSparkDialect()).compile(
        load_view(view), exp.to_table("src"), filter_type=False
    )
    return query.sql(dialect="spark", identify=True)


def _coding() -> StructType:
    return StructType(
        [
            StructField(name, BooleanType() if name == "userSelected" else StringType())
            for name in ("id", "system", "version", "code", "display", "userSelected")
        ]
    )


SCHEMA = StructType(
    [
        StructField("id", StringType()),
        StructField(
            "code",
            StructType(
                [StructField("coding", ArrayType(_coding())), StructField("text", StringType())]
            ),
        ),
        StructField(
            "subject",
            StructType(
                [StructField("reference", StringType()), StructField("display", StringType())]
            ),
        ),
        StructField(
            "valueQuantity",
            StructType([StructField("value", StringType()), StructField("unit", StringType())]),
        ),
        StructField("status", StringType()),
    ]
)


def test_paths_through_aliases_lambdas_and_explode() -> None:
    # the subject's computed key has the alias ``subject``: not the whole source struct
    assert read_paths(_sql(OBS)) == {
        ("id",),
        ("subject", "reference"),
        ("valueQuantity", "value"),
        ("code", "coding", "system"),
        ("code", "coding", "code"),
    }


def test_whole_values_keep_their_subtree() -> None:
    # a struct compared, tested for NULL or turned to text is read whole
    sql = (
        "SELECT TRANSFORM(COALESCE(_c, ARRAY()), (_f, _i) -> _f IS NOT NULL) AS a,"
        " GET(COALESCE(_c, ARRAY()), 0).`code` AS b, TO_JSON(`subject`) AS c"
        " FROM (SELECT `code`.`coding` AS _c, `subject` FROM src) AS s"
    )
    paths = read_paths(sql)
    assert paths == {("code", "coding"), ("code", "coding", "code"), ("subject",)}
    pruned = prune_schema(SCHEMA, paths or set())
    assert pruned is not None
    assert [f.name for f in pruned.fields] == ["code", "subject"]
    assert pruned["code"].dataType == StructType([SCHEMA["code"].dataType["coding"]])
    assert pruned["subject"] == SCHEMA["subject"]
    # a lambda variable shadows an outer name only inside its body
    sql = "SELECT FILTER(`status`, status -> status.x = 1) AS a FROM src"
    assert read_paths(sql) == {("status", "x")}
    # text that does not parse: no paths, the caller reads every column
    assert read_paths("SELECT id, any, x FROM src") is None


def test_schema_cut_to_the_paths() -> None:
    paths = read_paths(_sql(OBS))
    assert paths is not None
    pruned = prune_schema(SCHEMA, paths)
    assert pruned is not None
    assert pruned.simpleString() == (
        "struct<id:string,code:struct<coding:array<struct<system:string,code:string>>>,"
        "subject:struct<reference:string>,valueQuantity:struct<value:string>>"
    )
    # names resolve case-insensitively (as in Spark); unknown names are ignored
    loose = prune_schema(SCHEMA, {("SUBJECT", "Reference"), ("_row", "x"), ("id", "deeper")})
    assert loose is not None
    assert loose.simpleString() == "struct<id:string,subject:struct<reference:string>>"
    assert prune_schema(SCHEMA, {("nothing",)}) is None


def test_compiled_tree_walked_as_its_text() -> None:
    # the engine walks the tree the compiler built (no render and re-parse): the same
    # paths as the rendered text, parsed, on every conformance view with a typed form
    from tests.views.test_conformance import _cases

    compiler = ViewCompiler(TypedSparkDialect())
    walked = 0
    for case in _cases():
        try:
            view = load_view(json.loads(json.dumps(case.test["view"], default=float)))
            query = compiler.compile(view, exp.to_table("src"), filter_type=False)
        except (ViewDefinitionError, TypedLayoutUnsupported):
            continue
        assert read_paths(query) == read_paths(query.sql(dialect="spark", identify=True))
        walked += 1
    assert walked > 100
