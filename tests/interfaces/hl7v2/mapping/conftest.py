"""Fixtures: the FHIR model, a router over a throwaway SQLite store, a FHIR client adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2 import parse
from cmio.interfaces.hl7v2.mapping import MappingOptions, MappingResult, map_message
from cmio.model import Model, load_model
from cmio.validation import validate_structure

_JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


class RouterClient:
    """A :class:`cmio.interfaces.hl7v2.mapping.FhirClient` over ``FhirRouter.handle``."""

    def __init__(self, router: FhirRouter) -> None:
        self.router = router

    def request(
        self, method: str, path: str, query: list[tuple[str, str]], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        data = orjson.dumps(body) if body is not None else b""
        response = self.router.handle(FhirRequest(method, path, query, dict(_JSON), data))
        return response.status, orjson.loads(response.body) if response.body else {}

    def post(self, result: MappingResult) -> dict[str, Any]:
        """Post a mapped message's Bundle; fails the test unless it is accepted."""
        status, body = self.request("POST", "", [], result.bundle)
        assert status == 200, body
        return body

    def search(self, rtype: str, **params: str) -> list[dict[str, Any]]:
        """Resources of ``rtype`` matching ``params`` (all pages)."""
        status, body = self.request("GET", rtype, [*params.items(), ("_count", "500")], None)
        assert status == 200, body
        return [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[RouterClient]:
    path: Path = tmp_path_factory.mktemp("hl7map") / "cmio.db"
    env = build_env(f"sqlite:///{path}", Settings(validation="base"), model)
    yield RouterClient(FhirRouter(env))
    env.repository.close()


def mapped(text: str, options: MappingOptions | None = None) -> MappingResult:
    """Parse (strictly) and map one message."""
    return map_message(parse(text, strict=True), options)


def resources(result: MappingResult, rtype: str) -> list[dict[str, Any]]:
    """The resources of one type in a mapped Bundle."""
    return [e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == rtype]


def one(result: MappingResult, rtype: str) -> dict[str, Any]:
    """The single resource of one type in a mapped Bundle."""
    found = resources(result, rtype)
    assert len(found) == 1, [e["resource"]["resourceType"] for e in result.bundle["entry"]]
    return found[0]


def assert_valid(model: Model, result: MappingResult) -> None:
    """Every resource of the Bundle passes structural validation."""
    for entry in result.bundle["entry"]:
        issues = validate_structure(model, entry["resource"])
        assert not issues, (entry["resource"]["resourceType"], [str(i) for i in issues])
