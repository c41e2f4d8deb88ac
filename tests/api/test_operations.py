"""The router's operation table: levels, types and methods are checked before dispatch."""

from __future__ import annotations

from pathlib import Path

import orjson

from cmio.api.app import build_env
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest, FhirResponse
from cmio.api.operations import Operation
from cmio.api.render import json_response
from cmio.api.router import FhirRouter
from cmio.model import Model


def _echo(env: Env, request: FhirRequest, rtype: str | None, rid: str | None) -> FhirResponse:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "type", "valueString": str(rtype)},
            {"name": "id", "valueString": str(rid)},
        ],
    }
    return json_response(request, 200, body)


def _router(tmp_path: Path, model: Model) -> FhirRouter:
    env = build_env(f"sqlite:///{tmp_path / 'ops.db'}", Settings(), model)
    op = Operation("echo", _echo, types=frozenset({"ValueSet"}), system=True)
    return FhirRouter(env, {"echo": op})


def _get(router: FhirRouter, path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    request = FhirRequest(method=method, path=path, query=[], headers={}, body=b"")
    response = router.handle(request)
    return response.status, orjson.loads(response.body)


def test_operation_levels_and_types(tmp_path: Path, model: Model) -> None:
    router = _router(tmp_path, model)
    status, body = _get(router, "$echo")
    assert status == 200
    assert [p["valueString"] for p in body["parameter"]] == ["None", "None"]  # type: ignore[index]
    status, body = _get(router, "ValueSet/vs1/$echo")
    assert status == 200
    assert [p["valueString"] for p in body["parameter"]] == ["ValueSet", "vs1"]  # type: ignore[index]
    status, body = _get(router, "Patient/$echo")
    assert status == 404
    assert body["resourceType"] == "OperationOutcome"
    status, _ = _get(router, "ValueSet/$echo", method="DELETE")
    assert status == 405
    status, _ = _get(router, "$unknown")
    assert status == 404
