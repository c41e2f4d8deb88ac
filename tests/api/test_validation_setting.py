"""Write-time enforcement of R4 invariants and bindings (``Settings.validation``)."""

from __future__ import annotations

from pathlib import Path

import httpx

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model
from tests.api.conftest import ServerThread

JSON = {"content-type": "application/fhir+json"}


def test_base_validation_rejects_invariant_and_binding_errors(tmp_path: Path, model: Model) -> None:
    env = build_env(f"sqlite:///{tmp_path / 'v.db'}", Settings(validation="base"), model)
    assert env.profile_validator is not None
    with (
        ServerThread(CmioApp(env), close_app=True) as server,
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        bad_gender = http.post(
            "/Patient", json={"resourceType": "Patient", "gender": "bloke"}, headers=JSON
        )
        assert bad_gender.status_code == 400
        assert bad_gender.json()["issue"][0]["expression"] == ["Patient.gender"]
        no_contact_details = http.post(
            "/Patient",
            json={"resourceType": "Patient", "contact": [{"gender": "male"}]},
            headers=JSON,
        )
        assert no_contact_details.status_code == 400
        assert "pat-1" in no_contact_details.json()["issue"][0]["diagnostics"]
        good = http.post(
            "/Patient", json={"resourceType": "Patient", "gender": "female"}, headers=JSON
        )
        assert good.status_code == 201
        assert http.get("/Patient").json()["total"] == 1


def test_structure_only_when_off(tmp_path: Path, model: Model) -> None:
    env = build_env(f"sqlite:///{tmp_path / 'o.db'}", Settings(validation="off"), model)
    assert env.profile_validator is None
    with (
        ServerThread(CmioApp(env), close_app=True) as server,
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        response = http.post(
            "/Patient", json={"resourceType": "Patient", "gender": "bloke"}, headers=JSON
        )
        assert response.status_code == 201
