"""Fuzzing the FHIR API from its OpenAPI document with schemathesis: zero 5xx.

A real server (uvicorn on loopback) with a few stored resources; schemathesis generates
requests for a bounded selection of operations (every interaction shape: search,
create, read, update, patch, delete, history, vread, ``_search``, batch/transaction,
``$everything``), with authentication off and on. The longer run over every operation
is ``bench/fuzz_api.py`` (results in docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model, load_model
from cmio.testing.auth import auth_app, bearer, mint_token
from cmio.testing.server import ServerThread

pytestmark = pytest.mark.slow

OPERATIONS: tuple[tuple[str, str, int], ...] = (
    ("/Patient", "GET", 30),
    ("/Observation", "GET", 30),
    ("/Encounter", "GET", 15),
    ("/Patient/{id}", "GET", 15),
    ("/Patient/{id}/_history/{vid}", "GET", 10),
    ("/Patient/{id}/_history", "GET", 10),
    ("/Observation/_history", "GET", 10),
    ("/Patient/_search", "POST", 10),
    ("/Patient/{id}/$everything", "GET", 10),
    ("/_history", "GET", 10),
    ("/Patient/{id}", "DELETE", 10),
    ("/Patient/{id}", "PATCH", 6),
    ("/Patient", "POST", 6),
    ("/Observation/{id}", "PUT", 4),
    ("/", "POST", 6),
)
SEED = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Fuzz"}], "gender": "other"},
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"},
    },
]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def fuzz(base: str, schema: Any, headers: dict[str, str], scale: float = 1.0) -> list[str]:
    """Run the selected operations; returns the 5xx answers found (empty: none)."""
    failures: list[str] = []
    for path, method, examples in OPERATIONS:
        operation = schema[path][method]

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max(1, int(examples * scale)),
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base, headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label} -> {response.status_code}: {case.path_parameters}"
                    f" {case.query} {str(case.body)[:200]} :: {response.text[:300]}"
                )

        run()
    return failures


def seeded(base: str, headers: dict[str, str]) -> None:
    for resource in SEED:
        url = f"{base}/{resource['resourceType']}/{resource['id']}"
        done = httpx.put(url, json=resource, headers=headers, timeout=60)  # a loaded machine
        assert done.status_code in (200, 201), done.text


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(terminology_db=None, export_dir=str(tmp / "exports"))
    app = CmioApp(build_env(f"sqlite:///{tmp / 'f.db'}", settings_, model=model))
    with ServerThread(app, close_app=True) as server:
        seeded(server.base, {})
        yield server


def test_fuzz_without_authentication_finds_no_5xx(open_server: ServerThread) -> None:
    document = httpx.get(f"{open_server.base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    assert fuzz(open_server.base, schema, {}, scale=0.7) == []
    assert httpx.get(f"{open_server.base}/metadata").status_code == 200  # still serving


def test_fuzz_with_authentication_finds_no_5xx(tmp_path: Path, model: Model) -> None:
    settings_ = Settings(
        validation="off", terminology_db=None, export_dir=str(tmp_path / "exports")
    )
    app = auth_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, model=model, settings=settings_)
    with ServerThread(app, close_app=True) as server:
        admin = bearer(mint_token(app, server.base, scopes=["user/*.cruds"]))
        seeded(server.base, admin)
        document = httpx.get(f"{server.base}/openapi.json", headers=admin).json()
        assert document["security"] == [{"bearer": []}]
        schema = schemathesis.openapi.from_dict(document)
        patient = bearer(
            mint_token(app, server.base, scopes=["patient/*.rs", "launch/patient"], patient="p1")
        )
        assert fuzz(server.base, schema, admin, scale=0.5) == []
        assert fuzz(server.base, schema, patient, scale=0.3) == []
        assert fuzz(server.base, schema, {"authorization": "Bearer not-a-token"}, scale=0.2) == []
        assert httpx.get(f"{server.base}/Patient").status_code == 401
