"""The bearer check over HTTP: public routes, 401s with OperationOutcome, token tampering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmio.api.app import CmioApp
from cmio.model import Model
from cmio.testing.auth import auth_app, auth_server, bearer, mint_token
from cmio.testing.server import ServerThread


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[ServerThread]:
    root: Path = tmp_path_factory.mktemp("auth")
    app = auth_app(f"sqlite:///{root / 'cmio.db'}", root, model=model)
    with ServerThread(app, close_app=True) as running:
        yield running


@pytest.fixture()
def app(server: ServerThread) -> CmioApp:
    assert isinstance(server.app, CmioApp)
    return server.app


def _outcome_401(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "login"
    assert "Traceback" not in response.text
    return body


def test_public_routes_need_no_token(server: ServerThread) -> None:
    assert httpx.get(server.base + "/metadata").status_code == 200
    origin = server.base.removesuffix("/fhir")
    assert httpx.get(origin + "/health").status_code == 200
    config = httpx.get(origin + "/.well-known/smart-configuration").json()
    assert config["issuer"] == origin
    assert config["token_endpoint"] == origin + "/auth/token"
    assert "S256" in config["code_challenge_methods_supported"]
    oidc = httpx.get(origin + "/.well-known/openid-configuration").json()
    assert oidc["issuer"] == origin and oidc["jwks_uri"] == config["jwks_uri"]
    assert oidc["id_token_signing_alg_values_supported"] == ["ES256"]
    keys = httpx.get(config["jwks_uri"]).json()["keys"]
    assert keys and all("d" not in k for k in keys)


def test_metadata_names_smart_on_fhir(server: ServerThread) -> None:
    rest = httpx.get(server.base + "/metadata").json()["rest"][0]
    security = rest["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    origin = server.base.removesuffix("/fhir")
    assert uris["token"] == origin + "/auth/token"
    assert uris["authorize"] == origin + "/auth/authorize"


def test_grant_reaches_the_request_context(
    server: ServerThread, app: CmioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    router = app.fhir.router
    for name in ("handle", "respond"):  # whichever entry point the adapter calls
        original = getattr(router, name, None)
        if original is None:
            continue

        def recording(request: Any, _original: Any = original) -> Any:
            seen.append(request.context)
            return _original(request)

        monkeypatch.setattr(router, name, recording)
    token = mint_token(app, server.base, roles=["analyst"], patient="p7", subject="ann")
    assert httpx.get(server.base + "/Patient", headers=bearer(token)).status_code == 200
    grant = seen[-1].grant
    assert grant.subject == "ann" and grant.patient == "p7" and grant.authenticated
    assert grant.roles == {"analyst"} and "user/*.rs" in grant.scopes
    assert seen[-1].principal == "ann"


def test_missing_token_is_401(server: ServerThread) -> None:
    response = httpx.get(server.base + "/Patient")
    body = _outcome_401(response)
    assert "error=" not in response.headers["www-authenticate"]
    assert "bearer" in body["issue"][0]["diagnostics"].lower()
    origin = server.base.removesuffix("/fhir")
    assert httpx.get(origin + "/metrics").status_code == 401
    page = httpx.get(origin + "/", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/auth/login")


def test_valid_token_is_admitted(server: ServerThread, app: CmioApp) -> None:
    token = mint_token(app, server.base, roles=["clinician"], fhir_user="Practitioner/p1")
    response = httpx.get(server.base + "/Patient", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["resourceType"] == "Bundle"
    origin = server.base.removesuffix("/fhir")
    assert httpx.get(origin + "/", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"bad_signature": True}, "signature"),
        ({"alg": "none"}, "algorithm"),
        ({"alg": "HS256"}, "algorithm"),
        ({"expires_in": -3600}, "expired"),
        ({"not_before": 4_000_000_000}, "not valid yet"),
        ({"audience": "https://elsewhere.example/fhir"}, "audience"),
        ({"issuer": "https://evil.example"}, "issuer"),
        ({"typ": "JWT"}, "type"),
    ],
)
def test_tampered_tokens_are_401(
    server: ServerThread, app: CmioApp, tamper: dict[str, Any], reason: str
) -> None:
    token = mint_token(app, server.base, roles=["administrator"], **tamper)
    response = httpx.get(server.base + "/Patient", headers=bearer(token))
    body = _outcome_401(response)
    assert reason in body["issue"][0]["diagnostics"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer a b",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "bearer ...",
    ],
)
def test_malformed_authorization_is_401(server: ServerThread, header: str) -> None:
    _outcome_401(httpx.get(server.base + "/Patient", headers={"authorization": header}))


def test_revoked_token_is_401(server: ServerThread, app: CmioApp) -> None:
    token = mint_token(app, server.base, roles=["analyst"])
    assert httpx.get(server.base + "/Patient", headers=bearer(token)).status_code == 200
    claims = auth_server(app).tokens.verify_signature(token)
    auth_server(app).revocations.revoke(claims["jti"], claims["exp"])
    body = _outcome_401(httpx.get(server.base + "/Patient", headers=bearer(token)))
    assert "revoked" in body["issue"][0]["diagnostics"]
