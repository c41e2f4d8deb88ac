"""An external OIDC issuer's tokens over HTTP, beside the built-in server's own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cmio.model import Model
from cmio.security.oidc import ExternalIssuer
from cmio.testing.auth import auth_app, auth_server, bearer, mint_token
from cmio.testing.server import ServerThread
from tests.security.test_oidc import ISSUER, FakeIdp


def test_external_issuer_tokens(tmp_path: Path, model: Model) -> None:
    idp = FakeIdp()
    app = auth_app(f"sqlite:///{tmp_path / 'cmio.db'}", tmp_path, model=model)
    with ServerThread(app, close_app=True) as server:
        auth = auth_server(app)
        auth.oidc = ExternalIssuer(ISSUER, roles_claim="realm_access.roles", fetch=idp.fetch)
        token = idp.token(aud=server.base, realm_access={"roles": ["analyst"]})
        answer = httpx.get(server.base + "/Patient", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        expired = idp.token(aud=server.base, exp=1_000_000)
        refused = httpx.get(server.base + "/Patient", headers=bearer(expired))
        assert refused.status_code == 401 and "expired" in refused.json()["issue"][0]["diagnostics"]
        wrong_aud = httpx.get(server.base + "/Patient", headers=bearer(idp.token()))
        assert wrong_aud.status_code == 401
        own = mint_token(app, server.base, roles=["analyst"])  # the built-in issuer still works
        assert httpx.get(server.base + "/Patient", headers=bearer(own)).status_code == 200


@pytest.mark.parametrize("value", ["off", "OFF", "0"])
def test_auth_off_by_environment(value: str) -> None:
    from cmio.api.env import Settings

    assert Settings.from_environment({"CMIO_AUTH": value}).auth is None
    settings = Settings.from_environment({"CMIO_OIDC_ISSUER": ISSUER}).auth
    assert settings is not None and settings.oidc_issuer == ISSUER
    configured = Settings.from_environment(
        {"CMIO_JWT_KEY_FILE": "/run/secrets/k.pem", "CMIO_ISSUER": "https://cmio.example.org"}
    ).auth
    assert configured is not None and configured.key_file == "/run/secrets/k.pem"
    assert configured.issuer == "https://cmio.example.org"
