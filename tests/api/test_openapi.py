"""GET /fhir/openapi.json: the OpenAPI 3 document built from the CapabilityStatement."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.openapi import openapi_document
from cmio.api.ops.capabilities import capability_statement
from cmio.api.router import FhirRouter
from cmio.model import load_model


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CmioApp]:
    tmp = tmp_path_factory.mktemp("openapi")
    settings = Settings(terminology_db=None, export_dir=str(tmp / "exports"), validation="off")
    application = CmioApp(build_env(f"sqlite:///{tmp / 'o.db'}", settings, model=load_model()))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture(scope="module")
def router(app: CmioApp) -> FhirRouter:
    return app.fhir.router


@pytest.fixture(scope="module")
def document(router: FhirRouter) -> dict[str, Any]:
    response = router.handle(FhirRequest("GET", "openapi.json"))
    assert response.status == 200
    assert dict(response.headers)["content-type"] == "application/json"
    parsed: dict[str, Any] = orjson.loads(response.body)
    return parsed


def test_document_is_valid_openapi_3(router: FhirRouter, document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.0")
    # the whole document (1.8 MB) takes 20 s to validate: validate the same generator's
    # output for a handful of types (every path shape, system paths, security)
    statement = capability_statement(router.env, "http://localhost/fhir", router.operations)
    rest = statement["rest"][0]
    keep = {"Patient", "Observation", "Group", "ValueSet", "Bundle"}
    rest["resource"] = [r for r in rest["resource"] if r["type"] in keep]
    rest["security"] = {"service": []}
    validate(openapi_document(statement, router.env.model, "http://localhost/fhir"))


def test_every_type_interaction_and_search_parameter(
    router: FhirRouter, document: dict[str, Any]
) -> None:
    statement = capability_statement(router.env, "http://localhost/fhir", router.operations)
    resources = statement["rest"][0]["resource"]
    assert len(resources) == len(router.env.model.resource_types)
    paths = document["paths"]
    for entry in resources:
        rtype = entry["type"]
        assert set(paths[f"/{rtype}"]) == {"get", "post"}
        assert set(paths[f"/{rtype}/{{id}}"]) == {"get", "put", "patch", "delete"}
        assert "get" in paths[f"/{rtype}/{{id}}/_history/{{vid}}"]
        assert "post" in paths[f"/{rtype}/_search"]
        listed = {p["name"]: p.get("x-fhir-type") for p in paths[f"/{rtype}"]["get"]["parameters"]}
        expected = {sp["name"]: sp["type"] for sp in entry["searchParam"]}
        assert {k: listed[k] for k in expected} == expected
        assert document["components"]["schemas"][rtype]["properties"]["resourceType"] == {
            "type": "string",
            "enum": [rtype],
        }
    types = {p.get("x-fhir-type") for p in paths["/Observation"]["get"]["parameters"]}
    assert {"string", "token", "reference", "date", "quantity", "composite", "uri"} <= types
    assert "/Patient/{id}/$everything" in paths and "/metadata" in paths
    schema = document["components"]["schemas"]["Patient"]["properties"]
    assert schema["active"]["type"] == "boolean" and schema["name"]["type"] == "array"
    assert schema["multipleBirthInteger"]["type"] == "integer"


def test_bearer_security_when_authentication_is_on(router: FhirRouter) -> None:
    statement = capability_statement(router.env, "http://localhost/fhir", router.operations)
    statement["rest"][0]["security"] = {"service": []}
    document = openapi_document(statement, router.env.model, "https://h/fhir")
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/metadata"]["get"]["security"] == []
    assert document["servers"] == [{"url": "https://h/fhir"}]


def test_served_over_the_app(app: CmioApp) -> None:
    """The route works through the ASGI adapter too (content type JSON, headers hardened)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/fhir/openapi.json")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.json()["servers"] == [{"url": "http://t/fhir"}]
    assert response.headers["x-content-type-options"] == "nosniff"
