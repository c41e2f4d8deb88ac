"""Authentication for tests: an auth-enabled app and signed (or deliberately bad) tokens.

Use::

    app = auth_app(database_url, tmp_path, model=model)
    with ServerThread(app, close_app=True) as server:
        token = mint_token(app, server.base, scopes=["patient/Observation.rs"], patient="p1")
        httpx.get(server.base + "/Observation", headers=bearer(token))

``mint_token`` signs with the app's own key (so the token is valid) unless told to
tamper: ``alg="none"``, ``alg="HS256"`` (the public key as HMAC secret),
``bad_signature=True``, ``expires_in`` negative, another ``audience``/``issuer``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.model import Model
from cmio.security.oauth.server import AuthServer
from cmio.security.oauth.settings import AuthSettings
from cmio.security.roles import RoleTable

__all__ = ["auth_app", "auth_server", "bearer", "mint_token", "test_auth_settings"]


def test_auth_settings(key_dir: Path, **overrides: Any) -> AuthSettings:
    """Auth settings for tests: keys in ``key_dir``, cheap argon2 parameters."""
    values: dict[str, Any] = {
        "key_file": str(key_dir / "auth-keys.json"),
        "password_time_cost": 1,
        "password_memory_kib": 8 * 1024,
    }
    values.update(overrides)
    return AuthSettings(**values)


test_auth_settings.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def auth_app(
    database_url: str,
    key_dir: Path,
    *,
    model: Model | None = None,
    settings: Settings | None = None,
    **auth_overrides: Any,
) -> CmioApp:
    """A :class:`CmioApp` with authentication on (keys under ``key_dir``)."""
    base = settings or Settings(validation="off", terminology_db=None)
    auth = test_auth_settings(key_dir, **auth_overrides)
    return CmioApp(build_env(database_url, replace(base, auth=auth), model))


def auth_server(app: CmioApp) -> AuthServer:
    """The app's authorization server (users, clients, keys, audit hook)."""
    if app.auth is None:
        raise ValueError("authentication is off in this app")
    return app.auth.server


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a token."""
    return {"authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(
    app: CmioApp | AuthServer,
    base_url: str,
    *,
    scopes: Iterable[str] | None = None,
    roles: Iterable[str] = (),
    patient: str | None = None,
    fhir_user: str | None = None,
    subject: str = "test-user",
    client_id: str = "test-client",
    kind: str = "user",
    expires_in: int = 3600,
    not_before: int | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    alg: str | None = None,
    bad_signature: bool = False,
    typ: str = "at+jwt",
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed access token for the app's FHIR base ``base_url`` (``http://host:port/fhir``).

    Args:
        app: the auth-enabled app (or its server).
        base_url: the FHIR base the token is for (its ``aud``; ``iss`` is its origin).
        scopes: SMART scopes; default: the scopes of ``roles``.
        roles: the user's roles.
        patient: the launch patient id.
        fhir_user: e.g. ``Practitioner/123``.
        subject: ``sub`` (the user name or client id).
        client_id: the client the token was issued to.
        kind: ``user`` or ``client`` (a backend service).
        expires_in: seconds from now (negative: already expired).
        not_before: ``nbf`` override (a future time: not valid yet).
        audience: ``aud`` override (tampering).
        issuer: ``iss`` override (tampering).
        alg: ``none`` (unsigned) or ``HS256`` (public key as HMAC secret) to tamper;
            default: the server's own algorithm.
        bad_signature: sign with a stranger's key under the server's key id.
        typ: the ``typ`` header.
        extra: more claims.
    """
    server = auth_server(app) if isinstance(app, CmioApp) else app
    roles = tuple(roles)
    granted = set(scopes) if scopes is not None else set(RoleTable().scopes_for(roles))
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer or server.issuer_for(base_url),
        "aud": audience or server.audience_for(base_url),
        "sub": subject,
        "iat": now,
        "nbf": now if not_before is None else not_before,
        "exp": now + expires_in,
        "jti": os.urandom(16).hex(),
        "scope": " ".join(sorted(granted)),
        "client_id": client_id,
        "kind": kind,
    }
    if roles:
        claims["roles"] = list(roles)
    if patient:
        claims["patient"] = patient
    if fhir_user:
        claims["fhirUser"] = fhir_user
    claims.update(extra or {})
    key = server.keys.current
    header = {"alg": alg or key.alg, "kid": key.kid, "typ": typ}
    signing_input = (
        _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    ).encode("ascii")
    if alg == "none":
        return signing_input.decode() + "."
    if alg == "HS256":
        pem = key.key.as_pem(private=False)  # the classic key-confusion attack
        signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
        return signing_input.decode() + "." + _b64(signature)
    signer = key.key
    if bad_signature:
        signer = ECKey.generate_key("P-256") if key.alg == "ES256" else RSAKey.generate_key(2048)
    compact = jws.serialize_compact(
        header, json.dumps(claims).encode(), signer, algorithms=[header["alg"]]
    )
    return str(compact)
