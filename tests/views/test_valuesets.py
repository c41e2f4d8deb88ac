"""``memberOf()`` in views: joins against expansion tables on every engine.

The view "active conditions in the diabetes value set" must give the same rows on
the in-memory evaluator, DuckDB (resources and the store), Spark and PostgreSQL,
and the same ids as the direct FHIR search ``Condition?code:in=..&clinical-status=active``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.model import Model
from cmio.terminology.providers import ServiceTerminology
from cmio.views import ViewDefinitionError, run
from cmio.views.postgres_engine import create_view
from cmio.views.postgres_engine import run as postgres_run
from cmio.views.valuesets import ExpansionMembership, table_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CS = "http://example.org/cs/dx"
VS = "http://example.org/vs/diabetes"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
JSON = {"content-type": "application/fhir+json"}
CODES = ["diabetes", "t1dm", "t2dm", "t2dm-neph", "hypertension", "asthma"]
VIEW = {
    "resourceType": "ViewDefinition",
    "name": "active_diabetes",
    "resource": "Condition",
    "status": "active",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                {"name": "in_vs", "path": "code.memberOf('" + VS + "')", "type": "boolean"},
            ]
        }
    ],
    "where": [
        {"path": "code.memberOf('" + VS + "')"},
        {"path": f"clinicalStatus.coding.where(system = '{CLINICAL}').code.first() = 'active'"},
    ],
}


def _code_system() -> dict[str, Any]:
    def concept(code: str, *children: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {"code": code, "display": code}
        if children:
            found["concept"] = list(children)
        return found

    return {
        "resourceType": "CodeSystem",
        "id": "dx",
        "url": CS,
        "status": "active",
        "content": "complete",
        "hierarchyMeaning": "is-a",
        "concept": [
            concept("diabetes", concept("t1dm"), concept("t2dm", concept("t2dm-neph"))),
            concept("hypertension"),
            concept("asthma"),
        ],
    }


def _value_set() -> dict[str, Any]:
    include = {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "diabetes"}]}
    return {
        "resourceType": "ValueSet",
        "id": "diabetes",
        "url": VS,
        "status": "active",
        "compose": {"include": [include]},
    }


def _conditions(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        condition: dict[str, Any] = {"resourceType": "Condition", "id": f"c{i}"}
        condition["subject"] = {"reference": f"Patient/p{i % 5}"}
        status = rng.choice(["active", "active", "resolved", None])
        if status is not None:
            condition["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
        shape = rng.randrange(5)
        if shape == 0:
            condition["code"] = {"text": "no coding"}
        elif shape < 4:
            codings = [{"system": CS, "code": rng.choice(CODES)}]
            if shape == 3:  # a second coding from another system first
                codings.insert(0, {"system": "http://other", "code": "t1dm"})
            condition["code"] = {"coding": codings}
        out.append(condition)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[Env]:
    path: Path = tmp_path_factory.mktemp("vs") / "cmio.db"
    built = build_env(f"sqlite:///{path}", Settings(validation="off", terminology_db=None), model)
    router = FhirRouter(built)
    for resource in (_code_system(), _value_set(), *_conditions(60)):
        path_ = f"{resource['resourceType']}/{resource['id']}"
        response = router.handle(
            FhirRequest("PUT", path_, body=orjson.dumps(resource), headers=JSON)
        )
        assert response.status in (200, 201), response.body
    yield built
    built.repository.close()


@pytest.fixture(scope="module")
def terminology(env: Env) -> ServiceTerminology:
    assert env.terminology is not None
    return ServiceTerminology(env.terminology)


@pytest.fixture(scope="module")
def searched(env: Env) -> list[str]:
    """The direct query: FHIR search with the terminology ``:in`` modifier."""
    query = [("code:in", VS), ("clinical-status", "active"), ("_count", "1000")]
    response = FhirRouter(env).handle(FhirRequest("GET", "Condition", query=query))
    assert response.status == 200, response.body
    return sorted(e["resource"]["id"] for e in json.loads(response.body).get("entry", ()))


def _rows(table: Any) -> list[tuple[str, str, bool]]:
    return sorted((r["id"], r["patient"], r["in_vs"]) for r in table.to_pylist())


def test_expansion_through_the_service(terminology: ServiceTerminology) -> None:
    members = ExpansionMembership(terminology)
    assert members.member_of({"coding": [{"system": CS, "code": "t2dm-neph"}]}, VS) is True
    assert members.member_of({"coding": [{"system": CS, "code": "asthma"}]}, VS) is False
    assert members.member_of({"code": "t1dm"}, VS) is True  # a code without a system
    assert members.member_of({"text": "x"}, VS) is None


@pytest.mark.slow
def test_engines_agree_with_the_search(
    env: Env,
    terminology: ServiceTerminology,
    searched: list[str],
    spark: SparkSession,
    postgres_url: str,
    model: Model,
) -> None:
    from cmio.views.spark_engine import spark_run

    resources = _conditions(60)
    assert 5 < len(searched) < 40  # the data mixes members, non-members and statuses
    expected = _rows(run(VIEW, resources, engine="memory", terminology=terminology))
    assert [r[0] for r in expected] == searched
    assert all(r[2] is True for r in expected)
    assert _rows(run(VIEW, resources, terminology=terminology)) == expected
    assert _rows(run(VIEW, env.repository, terminology=terminology)) == expected
    assert (
        _rows(spark_run(VIEW, resources, spark, model=model, terminology=terminology)) == expected
    )
    on_pg = postgres_run(
        VIEW, resources, database=postgres_url, model=model, terminology=terminology
    )
    assert _rows(on_pg) == expected


def test_membership_column_three_valued(terminology: ServiceTerminology) -> None:
    """Without the where: true, false, and empty (no code) rows; same in memory and DuckDB."""
    view = {**VIEW, "where": []}
    resources = _conditions(60)
    memory = _rows(run(view, resources, engine="memory", terminology=terminology))
    assert {r[2] for r in memory} == {True, False, None}
    assert _rows(run(view, resources, terminology=terminology)) == memory


def test_postgres_sql_view_over_a_value_set(
    postgres_url: str, terminology: ServiceTerminology
) -> None:
    """A PostgreSQL view keeps joining its (permanent) expansion table; re-creating it refills."""
    schema = "vs_views"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.resource (type text, body jsonb, deleted boolean)")
        for resource in _conditions(30):
            conn.execute(
                f"INSERT INTO {schema}.resource VALUES ('Condition', %s, false)",
                (json.dumps(resource),),
            )
    from cmio.testing.pg import with_search_path

    url = with_search_path(postgres_url, schema)
    name = create_view(VIEW, url, terminology=terminology)
    create_view({**VIEW, "name": "again"}, url, terminology=terminology)  # same table, refilled
    with psycopg.connect(url) as conn:
        rows = conn.execute(f'SELECT id FROM "{name}" ORDER BY id').fetchall()
        count = conn.execute(f"SELECT count(*) FROM {table_name(VS)}").fetchone()
    expected = run(VIEW, _conditions(30), terminology=terminology).column("id").to_pylist()
    assert sorted(r[0] for r in rows) == sorted(expected) and expected
    assert count is not None and count[0] == 8  # 4 codes, each as system|code and *|code


def test_errors_name_the_value_set(terminology: ServiceTerminology) -> None:
    unknown = json.loads(json.dumps(VIEW).replace(VS, "http://example.org/vs/none"))
    with pytest.raises(ViewDefinitionError, match="vs/none"):
        run(unknown, _conditions(3), terminology=terminology)
    with pytest.raises(ViewDefinitionError, match="terminology service"):
        run(VIEW, _conditions(3))
    inside = {
        **VIEW,
        "where": [],
        "select": [
            {
                "forEach": "code.coding",
                "column": [{"name": "m", "path": f"memberOf('{VS}')", "type": "boolean"}],
            }
        ],
    }
    with pytest.raises(ViewDefinitionError, match="memberOf"):
        run(inside, _conditions(3), terminology=terminology)
    rows = run(inside, _conditions(10), engine="memory", terminology=terminology)
    assert rows.num_rows > 0  # the reference evaluator runs it


def test_viewdefinition_run_uses_the_server_terminology(env: Env, searched: list[str]) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "viewResource", "resource": VIEW}]}
    request = FhirRequest("POST", "$viewdefinition-run", body=orjson.dumps(body), headers=JSON)
    response = FhirRouter(env).handle(request)
    assert response.status == 200, response.body
    assert sorted(json.loads(line)["id"] for line in response.body.splitlines()) == searched
