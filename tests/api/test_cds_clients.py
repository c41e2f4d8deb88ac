"""Trusted CDS clients' JWTs (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from cmio.api.cds_clients import TrustedClients, jwt_issuer

ISSUER = "https://ehr.example.org"
URL = "https://cds.example.org/cds-services/diabetes-a1c"


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "k1"})


def _token(key: ECKey, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "ehr", "aud": URL, "iat": now,
                              "exp": now + 300, "jti": uuid.uuid4().hex}  # fmt: skip
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        {"alg": "ES384", "typ": "JWT", "kid": "k1"}, claims, key, algorithms=["ES384"]
    )


def _trusted(key: ECKey) -> TrustedClients:
    return TrustedClients({ISSUER: {"keys": [key.as_dict(private=False)]}})


def test_verify_checks_signature_audience_and_times(key: ECKey) -> None:
    trusted = _trusted(key)
    now = int(time.time())
    assert trusted.verify(_token(key), URL)
    assert trusted.verify(_token(key, aud=["https://other.example", URL]), URL)
    assert not trusted.verify(_token(key), URL + "-other")
    assert not trusted.verify(_token(key, exp=now - 10), URL)
    assert not trusted.verify(_token(key, exp=None), URL)
    assert not trusted.verify(_token(key, jti=None), URL)
    assert not trusted.verify(_token(key, nbf=now + 3600), URL)
    assert trusted.verify(_token(key, nbf=now + 30), URL)  # a minute's leeway
    other = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    assert not trusted.verify(_token(other), URL)  # signed by someone else
    assert not trusted.verify(_token(key, iss="https://unknown.example"), URL)
    assert not trusted.verify("not.a.jwt", URL)


def test_untrusted_or_bad_keysets() -> None:
    assert not TrustedClients()
    assert TrustedClients({ISSUER: 42}).keyset(ISSUER) is None
    assert TrustedClients({ISSUER: "not-a-url"}).keyset(ISSUER) is None  # unreachable
    assert TrustedClients().keyset(ISSUER) is None


def test_from_file(tmp_path: Path, key: ECKey) -> None:
    assert not TrustedClients.from_file(None)
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({ISSUER: {"keys": [key.as_dict(private=False)]}}))
    trusted = TrustedClients.from_file(path)
    assert list(trusted.clients) == [ISSUER] and trusted.verify(_token(key), URL)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected"):
        TrustedClients.from_file(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        TrustedClients.from_file(path)
    with pytest.raises(ValueError, match="not a readable JSON file"):
        TrustedClients.from_file(tmp_path / "missing.json")


def test_jwt_issuer(key: ECKey) -> None:
    assert jwt_issuer(_token(key)) == ISSUER
    assert jwt_issuer(_token(key, iss=7)) is None
    assert jwt_issuer("garbage") is None
    assert jwt_issuer("a.!!!.c") is None
