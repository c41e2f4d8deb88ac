"""The terminology operations used through ``fhirpy``, as a client application would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhirpy import SyncFHIRClient

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import load_model
from cmio.testing.server import ServerThread

CS = "http://example.org/cs/triage"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncFHIRClient]:
    path: Path = tmp_path_factory.mktemp("fhirpy-tx") / "cmio.db"
    settings = Settings(validation="off", terminology_db=None)
    app = CmioApp(build_env(f"sqlite:///{path}", settings, load_model()))
    with ServerThread(app, close_app=True) as running:
        yield SyncFHIRClient(running.base, extra_headers={"accept": "application/fhir+json"})


def _params(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        p["name"]: next((v for k, v in p.items() if k.startswith("value")), None)
        for p in answer["parameter"]
    }


def test_fhirpy_terminology(client: SyncFHIRClient) -> None:
    common = {"status": "active", "version": "1", "date": "2026-01-01", "publisher": "cmio tests"}
    client.resource(
        "CodeSystem",
        url=CS,
        content="complete",
        concept=[
            {"code": "urgent", "display": "Urgent", "concept": [{"code": "now", "display": "Now"}]},
            {"code": "routine", "display": "Routine"},
        ],
        **common,
    ).save()
    client.resource(
        "ValueSet",
        url="http://example.org/vs/urgent",
        compose={
            "include": [
                {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "urgent"}]}
            ]
        },
        **common,
    ).save()
    expanded = client.execute(
        "ValueSet/$expand", method="get", params={"url": "http://example.org/vs/urgent"}
    )
    assert [c["code"] for c in expanded["expansion"]["contains"]] == ["urgent", "now"]
    checked = client.execute(
        "ValueSet/$validate-code",
        data={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "url", "valueUri": "http://example.org/vs/urgent"},
                {"name": "coding", "valueCoding": {"system": CS, "code": "routine"}},
            ],
        },
    )
    assert _params(checked)["result"] is False
    looked = client.execute(
        "CodeSystem/$lookup", method="get", params={"system": CS, "code": "now"}
    )
    assert _params(looked)["display"] == "Now"
    subsumed = client.execute(
        "CodeSystem/$subsumes",
        method="get",
        params={"system": CS, "codeA": "now", "codeB": "urgent"},
    )
    assert _params(subsumed)["outcome"] == "subsumed-by"
