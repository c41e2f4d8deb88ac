"""An external OIDC issuer: discovery, cached keys, rotation, claim mapping, refusals."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from cmio.security.oidc import ExternalIssuer
from cmio.security.roles import RoleTable
from cmio.security.tokens import TokenError

ISSUER = "https://idp.example/realms/cmio"
AUD = "https://cmio.example/fhir"


class FakeIdp:
    """Serves a discovery document and a JWKS; counts fetches."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, auto_kid=True)]
        self.fetches: list[str] = []

    def fetch(self, url: str) -> dict[str, Any]:
        self.fetches.append(url)
        if url == ISSUER + "/.well-known/openid-configuration":
            return {"issuer": ISSUER, "jwks_uri": ISSUER + "/certs"}
        if url == ISSUER + "/certs":
            return {"keys": [k.as_dict(private=False) for k in self.keys]}
        raise AssertionError(url)

    def token(self, key: RSAKey | None = None, alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUD,
            "sub": "f3a1",
            "preferred_username": "carol",
            "exp": now + 300,
            "iat": now,
            "jti": "j1",
            "realm_access": {"roles": ["clinician", "uma_authorization"]},
            "azp": "cmio-web",
        }
        body.update(claims)
        signer = key or self.keys[0]
        return jwt.encode({"alg": alg, "kid": signer.kid}, body, signer, algorithms=[alg])


@pytest.fixture()
def idp() -> FakeIdp:
    return FakeIdp()


def _issuer(idp: FakeIdp) -> ExternalIssuer:
    return ExternalIssuer(ISSUER, roles_claim="realm_access.roles", fetch=idp.fetch)


def test_claims_map_to_a_grant(idp: FakeIdp) -> None:
    issuer = _issuer(idp)
    grant = issuer.grant(idp.token(), audience=AUD, role_table=RoleTable())
    assert grant.subject == "carol" and grant.roles == {"clinician"}
    assert "user/*.cruds" in grant.scopes  # no SMART scopes in the token: the role's
    assert grant.client_id == "cmio-web" and grant.kind == "user" and grant.token_id == "j1"
    scoped = idp.token(scope="openid patient/Observation.rs", patient="p1", fhirUser="Patient/p1")
    narrow = issuer.grant(scoped, audience=AUD, role_table=RoleTable())
    assert narrow.scopes == {"openid", "patient/Observation.rs"} and narrow.patient == "p1"
    assert idp.fetches.count(ISSUER + "/certs") == 1  # keys cached


def test_key_rotation_refetches_once(idp: FakeIdp) -> None:
    issuer = _issuer(idp)
    issuer.validate(idp.token(), AUD)
    new = RSAKey.generate_key(2048, auto_kid=True)
    idp.keys.append(new)
    issuer._fetched_at -= 120  # the last fetch was two minutes ago
    assert issuer.validate(idp.token(key=new), AUD)["sub"] == "f3a1"
    assert idp.fetches.count(ISSUER + "/certs") == 2
    stranger = RSAKey.generate_key(2048, auto_kid=True)
    with pytest.raises(TokenError, match="unknown key"):
        issuer.validate(idp.token(key=stranger), AUD)
    assert idp.fetches.count(ISSUER + "/certs") == 2  # not more than once a minute


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "https://other.example/fhir"}, "audience"),
        ({"exp": 1_000_000}, "expired"),
    ],
)
def test_refusals(idp: FakeIdp, claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        _issuer(idp).validate(idp.token(**claims), AUD)


def test_forged_and_unsigned_tokens(idp: FakeIdp) -> None:
    issuer = _issuer(idp)
    good = idp.token()
    head, payload, signature = good.split(".")
    forged = idp.token(preferred_username="admin").split(".")[1]
    with pytest.raises(TokenError, match="signature"):
        issuer.validate(f"{head}.{forged}.{signature}", AUD)
    with pytest.raises(TokenError, match="algorithm"):
        issuer.validate("eyJhbGciOiJub25lIn0." + payload + ".", AUD)


def test_discovery_must_name_the_issuer() -> None:
    def fetch(url: str) -> dict[str, Any]:
        return {"issuer": "https://impostor.example", "jwks_uri": "https://impostor.example/k"}

    with pytest.raises(TokenError, match="another issuer"):
        ExternalIssuer(ISSUER, fetch=fetch).validate(FakeIdp().token(), AUD)


def test_unreachable_issuer_is_a_token_error() -> None:
    def fetch(url: str) -> dict[str, Any]:
        raise OSError("connection refused")

    with pytest.raises(TokenError, match="unavailable"):
        ExternalIssuer(ISSUER, fetch=fetch).validate(FakeIdp().token(), AUD)
