"""The terminology operations through the FHIR router, over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.router import FhirRouter
from cmio.fhirpath import FhirPathEngine
from cmio.model import Model, load_model
from cmio.terminology.providers import ServiceTerminology

CS = "http://example.org/cs/colour"
VS = "http://example.org/vs/warm"
JSON = {"content-type": "application/fhir+json"}


def colour_system(version: str, *codes: str) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": f"colour-{version.replace('.', '-')}",
        "url": CS,
        "version": version,
        "name": "Colour",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "cmio tests",
        "content": "complete",
        "concept": [
            {
                "code": "warm",
                "display": "Warm",
                "concept": [{"code": c, "display": c.title()} for c in codes],
            },
            {"code": "blue", "display": "Blue"},
        ],
    }


def warm_set(version: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": "warm",
        "url": VS,
        "version": version,
        "name": "Warm",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "cmio tests",
        "compose": {
            "include": [
                {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "warm"}]}
            ]
        },
    }


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[Env]:
    path: Path = tmp_path_factory.mktemp("tx") / "cmio.db"
    built = build_env(f"sqlite:///{path}", Settings(validation="off", terminology_db=None), model)
    router = FhirRouter(built)
    for resource in (
        colour_system("1.0.0", "red"),
        colour_system("2.0.0", "red", "orange"),
        warm_set(),
    ):
        put(router, resource)
    yield built
    built.repository.close()


@pytest.fixture()
def router(env: Env) -> FhirRouter:
    return FhirRouter(env)


def put(router: FhirRouter, resource: dict[str, Any]) -> FhirResponse:
    path = f"{resource['resourceType']}/{resource['id']}"
    return router.handle(FhirRequest("PUT", path, body=orjson.dumps(resource), headers=JSON))


def call(
    router: FhirRouter, path: str, *query: tuple[str, str], body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    if body is None:
        response = router.handle(FhirRequest("GET", path, query=list(query)))
    else:
        response = router.handle(
            FhirRequest("POST", path, query=list(query), body=orjson.dumps(body), headers=JSON)
        )
    return response.status, orjson.loads(response.body)


def params(answer: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in answer["parameter"]:
        value = next(
            (v for k, v in p.items() if k.startswith("value")), p.get("resource", p.get("part"))
        )
        out.setdefault(p["name"], value)
    return out


def test_expand_get_post_and_instance(router: FhirRouter) -> None:
    status, body = call(router, "ValueSet/$expand", ("url", VS))
    assert status == 200
    assert [c["code"] for c in body["expansion"]["contains"]] == ["warm", "red", "orange"]
    assert {"name": "used-codesystem", "valueUri": f"{CS}|2.0.0"} in body["expansion"]["parameter"]
    pinned = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "url", "valueUri": VS},
            {"name": "system-version", "valueUri": f"{CS}|1.0.0"},
        ],
    }
    status, body = call(router, "ValueSet/$expand", body=pinned)
    assert status == 200 and [c["code"] for c in body["expansion"]["contains"]] == ["warm", "red"]
    status, body = call(router, "ValueSet/warm/$expand", ("count", "1"), ("offset", "1"))
    assert status == 200 and body["expansion"]["total"] == 3
    assert [c["code"] for c in body["expansion"]["contains"]] == ["red"]
    status, body = call(router, "ValueSet/$expand", ("url", f"{CS}?fhir_vs=isa/warm"))
    assert status == 200 and body["expansion"]["total"] == 3


def test_errors_are_operation_outcomes(router: FhirRouter) -> None:
    status, body = call(router, "ValueSet/$expand", ("url", "http://example.org/vs/none"))
    assert status == 404 and body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["details"]["coding"][0]["code"] == "not-found"
    status, body = call(router, "ValueSet/$expand", ("url", VS), ("count", "-1"))
    assert status == 400 and body["issue"][0]["expression"] == ["count"]
    status, body = call(router, "ValueSet/$expand", body={"resourceType": "Patient"})
    assert status == 400
    status, body = call(router, "Patient/$expand", ("url", VS))
    assert status == 404
    status, body = call(router, "CodeSystem/$lookup", ("system", CS), ("code", "nope"))
    assert status == 404 and body["issue"][0]["details"]["coding"][0]["code"] == "invalid-code"


def test_validate_code(router: FhirRouter) -> None:
    status, body = call(
        router, "ValueSet/$validate-code", ("url", VS), ("system", CS), ("code", "orange")
    )
    assert status == 200 and params(body)["result"] is True
    status, body = call(
        router, "ValueSet/$validate-code", ("url", f"{VS}|1"), ("system", CS), ("code", "blue")
    )
    assert params(body)["result"] is False
    coding = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "url", "valueUri": VS},
            {"name": "coding", "valueCoding": {"system": CS, "code": "red", "display": "Rouge"}},
        ],
    }
    status, body = call(router, "ValueSet/$validate-code", body=coding)
    found = params(body)
    assert found["result"] is False and found["display"] == "Red"
    assert found["issues"]["issue"][0]["details"]["coding"][0]["code"] == "invalid-display"
    status, body = call(
        router, "CodeSystem/$validate-code", ("url", CS), ("code", "orange"), ("version", "1.0.0")
    )
    assert params(body)["result"] is False
    status, body = call(router, "CodeSystem/colour-1-0-0/$validate-code", ("code", "red"))
    assert params(body)["result"] is True and params(body)["version"] == "1.0.0"


def test_lookup_subsumes_translate(router: FhirRouter) -> None:
    status, body = call(router, "CodeSystem/$lookup", ("system", CS), ("code", "red"))
    assert status == 200 and params(body)["display"] == "Red" and params(body)["version"] == "2.0.0"
    status, body = call(
        router, "CodeSystem/$subsumes", ("system", CS), ("codeA", "warm"), ("codeB", "red")
    )
    assert params(body)["outcome"] == "subsumes"
    cmap = {
        "resourceType": "ConceptMap",
        "id": "c2",
        "url": "http://example.org/cm",
        "version": "1",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "cmio tests",
        "group": [
            {
                "source": CS,
                "target": "http://example.org/other",
                "element": [
                    {"code": "red", "target": [{"code": "R", "equivalence": "equivalent"}]}
                ],
            }
        ],
    }
    assert put(router, cmap).status in (200, 201)
    status, body = call(router, "ConceptMap/$translate", ("system", CS), ("code", "red"))
    assert params(body)["result"] is True
    status, body = call(router, "ConceptMap/c2/$translate", ("system", CS), ("code", "blue"))
    assert params(body)["result"] is False
    # R5: from a target code back to the source codes mapped to it
    other = "http://example.org/other"
    status, body = call(
        router, "ConceptMap/$translate", ("targetSystem", other), ("targetCode", "R")
    )
    assert status == 200 and params(body)["result"] is True
    match = next(p for p in body["parameter"] if p["name"] == "match")
    parts = {p["name"]: next(v for k, v in p.items() if k != "name") for p in match["part"]}
    assert parts["concept"] == {"system": other, "code": "R"}
    assert parts["source"]["system"] == CS and parts["source"]["code"] == "red"
    assert parts["equivalence"] == "equivalent"
    status, body = call(
        router,
        "ConceptMap/$translate",
        ("targetSystem", other),
        ("targetCode", "R"),
        ("sourceSystem", "http://example.org/elsewhere"),
    )
    assert params(body)["result"] is False  # no map from that source system


def test_governance_new_version_not_in_place_edit(router: FhirRouter) -> None:
    changed = warm_set()
    changed["compose"]["include"][0]["filter"][0]["value"] = "blue"
    refused = put(router, changed)
    assert refused.status == 400
    outcome = orjson.loads(refused.body)
    assert outcome["issue"][0]["expression"] == ["ValueSet.version"]
    lifecycle = warm_set()
    lifecycle["status"] = "retired"  # status/date may change without a new version
    assert put(router, lifecycle).status == 200
    changed["version"] = "2"
    changed["id"] = "warm-2"
    assert put(router, changed).status == 201
    _, body = call(router, "ValueSet/$expand", ("url", VS))
    assert [c["code"] for c in body["expansion"]["contains"]] == ["blue"]  # newest version
    _status, body = call(router, "ValueSet/$expand", ("url", VS), ("valueSetVersion", "1"))
    assert [c["code"] for c in body["expansion"]["contains"]] == ["warm", "red", "orange"]
    _, body = call(router, "ValueSet/$expand", ("url", f"{VS}|1"))
    assert body["version"] == "1"


def test_search_and_fhirpath_use_the_service(env: Env, router: FhirRouter, model: Model) -> None:
    for i, code in enumerate(("red", "blue", "orange")):
        obs = {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "code": {"coding": [{"system": CS, "code": code}]},
        }
        assert put(router, obs).status in (200, 201)
    vs1 = f"{VS}|1"
    status, bundle = call(router, "Observation", ("code:in", vs1))
    assert status == 200 and sorted(e["resource"]["id"] for e in bundle.get("entry", ())) == [
        "o0",
        "o2",
    ]
    status, bundle = call(router, "Observation", ("code:not-in", vs1))
    assert sorted(e["resource"]["id"] for e in bundle.get("entry", ())) == ["o1"]
    status, bundle = call(router, "Observation", ("code:below", f"{CS}|warm"))
    assert sorted(e["resource"]["id"] for e in bundle.get("entry", ())) == ["o0", "o2"]
    assert env.terminology is not None
    engine = FhirPathEngine(model)
    provider = ServiceTerminology(env.terminology)
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": CS, "code": "red"}]},
    }
    assert engine.evaluate(obs, f"code.memberOf('{vs1}')", terminology=provider) == [True]


def test_terminology_answers_are_not_audited_failures_are(env: Env) -> None:
    """Terminology operations read no patient data: a successful answer is not held for an
    AuditEvent; a failed one is recorded like any interaction (docs/security.md, Audit)."""
    from cmio.api.audit import Auditor

    auditor = Auditor(env.repository)
    env.auditor = auditor
    try:
        router = FhirRouter(env)
        before = len(list(auditor.log.rows()))
        for path, query in (
            ("ValueSet/$validate-code", [("url", VS), ("system", CS), ("code", "red")]),
            ("ValueSet/$expand", [("url", VS)]),
            ("CodeSystem/$lookup", [("system", CS), ("code", "red")]),
            ("CodeSystem/$subsumes", [("system", CS), ("codeA", "warm"), ("codeB", "red")]),
        ):
            response, pending = router.respond(FhirRequest("GET", path, query=query))
            assert (response.status, pending) == (200, None), path
        missing = router.handle(FhirRequest("GET", "ValueSet/$expand", query=[("url", "urn:x")]))
        wrong_type = router.handle(FhirRequest("GET", "Patient/$validate-code"))
        read = router.handle(FhirRequest("GET", "ValueSet/warm"))
        assert (missing.status, wrong_type.status, read.status) == (404, 404, 200)
        rows = [orjson.loads(row.data) for row in list(auditor.log.rows())[before:]]
        assert [(r["outcome"], r["subtype"][0]["code"]) for r in rows] == [
            ("4", "operation"),
            ("4", "operation"),
            ("0", "read"),
        ]
    finally:
        env.auditor = None
        auditor.close()


def closure(router: FhirRouter, name: str, *parts: dict[str, Any]) -> tuple[int, Any]:
    """POST [base]/$closure with ``name`` and ``parts`` (concept / version parameters)."""
    body = {"resourceType": "Parameters", "parameter": [{"name": "name", "valueString": name}]}
    body["parameter"] += list(parts)
    return call(router, "$closure", body=body)


def concept(code: str, system: str = CS) -> dict[str, Any]:
    return {"name": "concept", "valueCoding": {"system": system, "code": code}}


def relations(answer: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (element["code"], target["code"], target["equivalence"])
        for group in answer["group"]
        for element in group["element"]
        for target in element["target"]
    }


def test_closure_table_initialise_add_resync(router: FhirRouter) -> None:
    """$closure (https://hl7.org/fhir/R4/conceptmap-operation-closure.html): only the new
    subsumption relations each time, with the table's version; re-sync by version."""
    status, empty = closure(router, "problems")
    assert (status, empty["resourceType"], empty["version"], empty["group"]) == (
        200,
        "ConceptMap",
        "0",
        [],
    )
    status, first = closure(router, "problems", concept("red"))  # nothing to relate yet
    assert (status, relations(first), first["version"]) == (200, set(), "0")
    _, second = closure(router, "problems", concept("warm"), concept("blue"), concept("red"))
    assert relations(second) == {("warm", "red", "specializes")}  # red is-a warm
    assert second["version"] == "1"
    assert second["group"][0]["source"] == second["group"][0]["target"] == CS
    _, third = closure(router, "problems", concept("orange"), concept("red"))
    assert relations(third) == {("orange", "warm", "subsumes")}  # orange is-a warm
    assert third["version"] == "2"
    version = {"name": "version", "valueString": "0"}
    _, everything = closure(router, "problems", version)
    assert relations(everything) == relations(second) | relations(third)
    assert everything["version"] == "2"
    _, later = closure(router, "problems", {"name": "version", "valueString": "1"})
    assert relations(later) == relations(third)
    _, again = closure(router, "problems")  # initialising again starts afresh
    assert again["version"] == "0"
    _, fresh = closure(router, "problems", concept("orange"), concept("warm"))
    assert relations(fresh) == {("warm", "orange", "specializes")}


def test_closure_errors_change_nothing(router: FhirRouter) -> None:
    closure(router, "errors")
    closure(router, "errors", concept("warm"))
    status, body = closure(router, "errors", concept("red"), concept("nope"))
    assert status == 404 and body["issue"][0]["expression"] == ["concept[1].code"]
    status, body = closure(router, "errors", concept("red", "http://example.org/none"))
    assert status == 404 and body["issue"][0]["expression"] == ["concept[0].system"]
    _, answer = closure(router, "errors", concept("red"))  # the failed calls added nothing
    assert relations(answer) == {("red", "warm", "subsumes")} and answer["version"] == "1"
    status, body = closure(router, "never-initialised", concept("red"))
    assert status == 404 and body["issue"][0]["expression"] == ["name"]
    both = closure(router, "errors", concept("red"), {"name": "version", "valueString": "0"})
    assert both[0] == 400
    assert closure(router, "errors", {"name": "version", "valueString": "x"})[0] == 400
    status, body = call(router, "$closure", body={"resourceType": "Parameters"})
    assert status == 400 and body["issue"][0]["expression"] == ["name"]
    assert call(router, "$closure", ("name", "errors"))[0] == 405  # it changes state: POST
