"""Caches of the terminology service: paged is-a expansions, $validate-code answers,
resource look-ups; each gives the answer the uncached path gives, and follows writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.model import Model, load_model
from cmio.terminology.concepts import ConceptStore
from cmio.terminology.resource_content import codesystem_to_concepts
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code
from tests.terminology.test_operations import CS, call, colour_system, params, put
from tests.terminology.test_service import CS as BODY
from tests.terminology.test_service import codesystem

VS = "http://example.org/vs/caches"


def _body_system() -> dict[str, Any]:
    cs = codesystem()
    arm = cs["concept"][0]["concept"][0]
    arm["designation"] = [{"language": "de", "value": "Arm (de)"}]
    return cs


def _contains(service: TerminologyService, **kw: Any) -> tuple[int, list[dict[str, Any]]]:
    out = service.expand(ExpandRequest(url=f"{BODY}?fhir_vs=isa/limb", **kw))
    return out["expansion"]["total"], out["expansion"].get("contains", [])


def test_paged_isa_is_a_slice_of_the_full_expansion(tmp_path: Path) -> None:
    store = ConceptStore(tmp_path / "t.db")
    try:
        info, concepts = codesystem_to_concepts(_body_system())
        store.load(info, concepts)
        service = TerminologyService(TerminologyResources(concepts=store), max_expansion=100)
        for extra in ({}, {"include_designations": True}):
            total, every = _contains(service, **extra)  # no count: the full member list
            assert total == 5 and every[0] == {
                "system": BODY,
                "abstract": True,
                "code": "limb",
                "display": "Limb",
            }
            for offset in range(7):
                for count in range(1, 7):
                    paged = _contains(service, offset=offset, count=count, **extra)
                    assert paged == (total, every[offset : offset + count])
        designated = _contains(service, count=5, include_designations=True)[1]
        assert designated[1]["designation"] == [{"language": "de", "value": "Arm (de)"}]
        german = service.expand(
            ExpandRequest(url=f"{BODY}?fhir_vs=isa/arm", count=1, options=_german())
        )
        assert german["expansion"]["contains"][0]["display"] == "Arm (de)"
        # the same (url, version) loaded again: pages and concepts are read afresh
        cs = _body_system()
        cs["concept"][0]["concept"][0]["display"] = "Upper limb"
        store.load(*codesystem_to_concepts(cs))
        assert _contains(service, count=2)[1][1]["display"] == "Upper limb"
    finally:
        store.close()


def _german() -> Any:
    from cmio.terminology.expansion import ExpandOptions

    return ExpandOptions(display_language="de")


def test_validate_code_answers_are_copies_and_follow_changes() -> None:
    vs = {
        "resourceType": "ValueSet",
        "id": "caches",  # as the core package's value sets
        "url": VS,
        "status": "active",
        "compose": {"include": [{"system": BODY, "concept": [{"code": "arm"}]}]},
    }
    resources = TerminologyResources(core=lambda: [codesystem(), vs])
    service = TerminologyService(resources)
    request = ValidateRequest([CodingInput(BODY, "arm")], service.find_valueset(VS))
    first = validate_code(service, request)
    first["parameter"].clear()  # a caller's change does not reach the kept answer
    again = validate_code(service, request)
    assert {p["name"]: p.get("valueBoolean") for p in again["parameter"]}["result"] is True
    assert len(service.answers._items) == 1
    resources.changed()  # a terminology write: a new generation, a new answer
    validate_code(service, request)
    assert len(service.answers._items) == 2
    inline = ValidateRequest([CodingInput(BODY, "arm")], {k: v for k, v in vs.items() if k != "id"})
    validate_code(service, inline)  # an inline value set is not kept
    overlay = resources.with_overlay([codesystem("9")])
    validate_code(service, request, overlay)  # nor an answer with the call's own resources
    assert len(service.answers._items) == 2


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture()
def two_servers(tmp_path: Path, model: Model) -> Iterator[tuple[Env, Env]]:
    settings = Settings(validation="off", terminology_db=None)
    url = f"sqlite:///{tmp_path / 'cmio.db'}"
    one, two = build_env(url, settings, model), build_env(url, settings, model)
    yield one, two
    one.repository.close()
    two.repository.close()


def _member(router: FhirRouter, code: str) -> bool:
    _, body = call(router, "ValueSet/$validate-code", ("url", VS), ("system", CS), ("code", code))
    result: bool = params(body)["result"]
    return result


def _warm(version: str, *codes: str) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": f"caches-{version}",
        "url": VS,
        "version": version,
        "name": "Caches",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "cmio tests",
        "compose": {"include": [{"system": CS, "concept": [{"code": c} for c in codes]}]},
    }


def test_answers_follow_writes_here_at_once_and_elsewhere_within_the_ttl(
    two_servers: tuple[Env, Env],
) -> None:
    one, two = (FhirRouter(env) for env in two_servers)
    other = two_servers[1].terminology
    assert other is not None
    other.resources.ttl = other.answers.ttl = 0.2
    assert put(one, colour_system("1.0.0", "red", "orange")).status == 201
    assert put(one, _warm("1", "red")).status == 201
    assert not _member(one, "orange") and not _member(two, "orange")
    assert put(one, _warm("2", "red", "orange")).status == 201  # the newest version
    assert _member(one, "orange")  # the writing server: at once
    time.sleep(0.45)  # the other server: once its look-up and answer have expired
    assert _member(two, "orange")


def test_a_repeated_get_is_answered_from_its_kept_bytes(two_servers: tuple[Env, Env]) -> None:
    env = two_servers[0]
    router = FhirRouter(env)
    assert put(router, colour_system("1.0.0", "red")).status == 201
    service = env.terminology
    assert service is not None
    query = [("url", f"{CS}?fhir_vs"), ("system", CS), ("code", "red")]
    first = router.handle(FhirRequest("GET", "ValueSet/$validate-code", query=query))
    kept = [k for k in service.answers._items if k[0] == "GET $validate-code"]
    assert len(kept) == 1 and first.status == 200
    again = router.handle(FhirRequest("GET", "ValueSet/$validate-code", query=query))
    assert again.body == first.body and again.headers[0] == first.headers[0]
    pretty = router.handle(
        FhirRequest("GET", "ValueSet/$validate-code", query=[*query, ("_pretty", "true")])
    )
    assert pretty.body != first.body and orjson.loads(pretty.body) == orjson.loads(first.body)
