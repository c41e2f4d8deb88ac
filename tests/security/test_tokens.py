"""Access tokens: claims issued, and every way validation refuses a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from cmio.security.keys import KeyRing
from cmio.security.kv import MemoryKeyValue
from cmio.security.tokens import Revocations, TokenError, TokenService, claims_to_grant

ISS = "https://cmio.example"
AUD = "https://cmio.example/fhir"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def service(clock: Clock) -> TokenService:
    return TokenService(KeyRing.generate(), Revocations(MemoryKeyValue(), clock=clock), clock=clock)


def _issue(service: TokenService, **extra: Any) -> tuple[str, dict[str, Any]]:
    return service.issue(
        issuer=ISS,
        audience=AUD,
        subject="alice",
        scopes=["patient/Observation.rs", "launch/patient"],
        client_id="app",
        roles=["clinician"],
        patient="p1",
        fhir_user="Practitioner/d1",
        ttl=600,
        **extra,
    )


def test_issued_claims_and_grant(service: TokenService, clock: Clock) -> None:
    token, claims = _issue(service)
    validated = service.validate(token, issuer=ISS, audience=AUD)
    assert validated == claims
    assert claims["exp"] - claims["iat"] == 600 and len(claims["jti"]) == 32
    grant = claims_to_grant(validated)
    assert grant.subject == "alice" and grant.kind == "user" and grant.patient == "p1"
    assert grant.scopes == {"patient/Observation.rs", "launch/patient"}
    assert grant.roles == {"clinician"} and grant.fhir_user == "Practitioner/d1"
    assert grant.token_id == claims["jti"] and grant.client_id == "app"


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _hs256(service: TokenService, header_b64: str, payload_b64: str) -> str:
    """The key-confusion attack: HMAC keyed with the server's public key."""
    header = _b64({"alg": "HS256", "kid": service.keys.current.kid, "typ": "at+jwt"})
    secret = service.keys.current.key.as_pem(private=False)
    mac = hmac.new(secret, f"{header}.{payload_b64}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload_b64}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_tampering_is_refused(service: TokenService, clock: Clock) -> None:
    token, claims = _issue(service)
    header_b64, payload_b64, signature = token.split(".")
    forged = dict(claims, sub="mallory")
    cases = {
        "signature": f"{header_b64}.{_b64(forged)}.{signature}",
        "algorithm 'none'": f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{payload_b64}.",
        "algorithm 'HS256'": _hs256(service, header_b64, payload_b64),
        "unknown key": f"{_b64({'alg': 'ES256', 'kid': 'x', 'typ': 'at+jwt'})}.{payload_b64}.{signature}",
        "type": service.sign(claims, typ="JWT"),
        "malformed": "abc.def",
    }
    for reason, bad in cases.items():
        with pytest.raises(TokenError) as info:
            service.validate(bad, issuer=ISS, audience=AUD)
        assert reason.split()[0].strip("'") in str(info.value) or reason == "malformed", reason


def test_claim_checks(service: TokenService, clock: Clock) -> None:
    token, claims = _issue(service)
    with pytest.raises(TokenError, match="issuer"):
        service.validate(token, issuer="https://other.example", audience=AUD)
    with pytest.raises(TokenError, match="audience"):
        service.validate(token, issuer=ISS, audience="https://other.example/fhir")
    clock.now += 600 + 31
    with pytest.raises(TokenError, match="expired"):
        service.validate(token, issuer=ISS, audience=AUD)
    clock.now -= 600 + 31 + 120
    with pytest.raises(TokenError, match="not valid yet"):
        service.validate(token, issuer=ISS, audience=AUD)
    clock.now += 120
    for missing in ("exp", "sub", "jti"):
        stripped = {k: v for k, v in claims.items() if k != missing}
        with pytest.raises(TokenError):
            service.validate(service.sign(stripped), issuer=ISS, audience=AUD)


def test_revocation_is_shared_and_cached(clock: Clock) -> None:
    kv = MemoryKeyValue()
    keys = KeyRing.generate()
    one = TokenService(keys, Revocations(kv, recheck_seconds=5, clock=clock), clock=clock)
    two = TokenService(keys, Revocations(kv, recheck_seconds=5, clock=clock), clock=clock)
    token, claims = _issue(one)
    two.validate(token, issuer=ISS, audience=AUD)
    one.revocations.revoke(claims["jti"], claims["exp"])  # type: ignore[union-attr]
    with pytest.raises(TokenError, match="revoked"):
        one.validate(token, issuer=ISS, audience=AUD)
    two.validate(token, issuer=ISS, audience=AUD)  # the other process: still cached
    clock.now += 6
    with pytest.raises(TokenError, match="revoked"):
        two.validate(token, issuer=ISS, audience=AUD)


def test_rotated_keys_still_verify(clock: Clock) -> None:
    ring = KeyRing.generate()
    old = TokenService(ring, clock=clock)
    token, _ = _issue(old)
    new = TokenService(ring.rotate(), clock=clock)
    assert new.validate(token, issuer=ISS, audience=AUD)["sub"] == "alice"
    retired = TokenService(KeyRing([ring.rotate().current]), clock=clock)
    with pytest.raises(TokenError, match="unknown key"):
        retired.validate(token, issuer=ISS, audience=AUD)


def test_replacing_the_keys_forgets_verified_tokens(clock: Clock) -> None:
    ring = KeyRing.generate()
    service = TokenService(ring, clock=clock)
    token, _ = _issue(service)
    for _ in range(3):  # the second and third use come from the verified-token cache
        assert service.validate(token, issuer=ISS, audience=AUD)["sub"] == "alice"
    service.keys = ring.rotate()
    assert service.validate(token, issuer=ISS, audience=AUD)["sub"] == "alice"
    service.keys = KeyRing.generate()
    with pytest.raises(TokenError, match="unknown key"):
        service.validate(token, issuer=ISS, audience=AUD)
