"""$reindex over HTTP: POST a SearchParameter, reindex, search with it; restart keeps it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.model import Model

from .conftest import ServerThread, new_database
from .test_reindex import SEARCH_PARAMETER, _patients


def _serve(url: str, model: Model) -> tuple[CmioApp, ServerThread]:
    app = CmioApp(build_env(url, model=model))
    return app, ServerThread(app)


def test_reindex_over_http(
    backend: str, model: Model, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = new_database(backend, request, tmp_path)
    app, thread = _serve(url, model)
    try:
        with thread as server, httpx.Client(base_url=server.base, timeout=30) as http:
            for patient in _patients(5):
                assert http.put(f"/Patient/{patient['id']}", json=patient).status_code == 201
            put = http.put("/SearchParameter/eye-colour", json=SEARCH_PARAMETER)
            assert put.status_code == 201
            assert http.get("/Patient", params={"eye-colour": "blue"}).status_code == 400
            assert http.get("/$reindex").status_code == 404
            kick = http.post("/$reindex")
            assert kick.status_code == 202
            assert kick.headers["content-location"].endswith("/$reindex")
            for _ in range(200):
                status = http.get("/$reindex").json()
                values = {p["name"]: p.get("valueCode") for p in status["parameter"]}
                if values["status"] == "completed":
                    break
                time.sleep(0.05)
            found = {p["name"]: p for p in status["parameter"]}
            assert found["status"]["valueCode"] == "completed"
            assert found["done"]["valueInteger"] == found["total"]["valueInteger"] == 6
            assert found["searchParameter"]["valueString"] == "eye-colour"
            blue = http.get("/Patient", params={"eye-colour": "blue"}).json()
            assert sorted(e["resource"]["id"] for e in blue["entry"]) == ["eye0", "eye3"]
            stated = http.get("/metadata").json()["rest"][0]["resource"]
            patient = next(r for r in stated if r["type"] == "Patient")
            assert "eye-colour" in {p["name"] for p in patient["searchParam"]}
    finally:
        app.close()
    app, thread = _serve(url, model)  # a restarted server applies it at start
    try:
        with thread as server, httpx.Client(base_url=server.base, timeout=30) as http:
            green = http.get("/Patient", params={"eye-colour": "green"}).json()
            assert [e["resource"]["id"] for e in green["entry"]] == ["eye2"]
    finally:
        app.close()
