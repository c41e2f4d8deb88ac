"""SMART Backend Services client authentication: a signed JWT assertion (private_key_jwt).

The client signs ``iss = sub = client_id``, ``aud`` = the token endpoint, ``exp`` at
most five minutes ahead and a unique ``jti`` with RS384 or ES384, using a key of its
registered JWKS
(https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint).
Replayed ``jti`` values are refused until the assertion expires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cmio.security.kv import ExpiringMap, KeyValue
from cmio.security.oauth.clients import Client, ClientRegistry
from cmio.security.oauth.errors import OAuthError
from cmio.security.tokens import TokenError, unverified_claims, unverified_header

__all__ = ["ASSERTION_ALGORITHMS", "ASSERTION_TYPE", "verify_client_assertion"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
MAX_LIFETIME = 300


def _client_keys(client: Client, fetch: Callable[[str], dict[str, Any]] | None) -> KeySet:
    jwks = client.jwks
    if jwks is None and client.jwks_url and fetch is not None:
        try:
            jwks = fetch(client.jwks_url)
        except Exception as exc:  # unreachable or not JSON
            raise OAuthError("invalid_client", "the client's JWKS URL did not answer", 401) from exc
    if not jwks:
        raise OAuthError("invalid_client", "the client has no registered keys", 401)
    try:
        return KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise OAuthError(
            "invalid_client", "the client's registered JWKS is not valid", 401
        ) from exc


def verify_client_assertion(
    assertion: str,
    *,
    clients: ClientRegistry,
    kv: KeyValue,
    token_endpoint: str,
    now: float,
    fetch_jwks: Callable[[str], dict[str, Any]] | None = None,
) -> Client:
    """Authenticate a client by its signed assertion; returns the client.

    Raises:
        OAuthError: ``invalid_client`` (401) for any failure.
    """
    try:  # unverified, only to find the client; its keys verify below
        header = unverified_header(assertion)
        claims = unverified_claims(assertion)
    except TokenError as exc:
        raise OAuthError("invalid_client", "client assertion is malformed", 401) from exc
    if not isinstance(claims, dict):
        raise OAuthError("invalid_client", "client assertion is malformed", 401)
    alg = header.get("alg")
    if alg not in ASSERTION_ALGORITHMS:
        raise OAuthError(
            "invalid_client",
            f"client assertion algorithm must be one of {ASSERTION_ALGORITHMS}",
            401,
        )
    client_id = claims.get("iss")
    client = clients.get(client_id) if isinstance(client_id, str) else None
    has_keys = client is not None and (client.jwks or client.jwks_url)
    if client is None or client.kind == "public" or not has_keys or claims.get("sub") != client_id:
        raise OAuthError("invalid_client", "client assertion: unknown client or sub != iss", 401)
    keys = _client_keys(client, fetch_jwks)
    kid = header.get("kid")
    candidates = [k for k in keys.keys if kid is None or k.kid == kid]
    verified: dict[str, Any] | None = None
    for key in candidates:
        try:
            verified = dict(jwt.decode(assertion, key, algorithms=[str(alg)]).claims)
            break
        except (JoseError, ValueError):
            continue
    if verified is None:
        raise OAuthError("invalid_client", "client assertion signature is not valid", 401)
    aud = verified.get("aud")
    if token_endpoint not in (aud if isinstance(aud, list) else [aud]):
        raise OAuthError("invalid_client", "client assertion aud must be the token endpoint", 401)
    exp = verified.get("exp")
    if not isinstance(exp, int | float) or exp < now - 30:
        raise OAuthError("invalid_client", "client assertion has expired or has no exp", 401)
    if exp > now + MAX_LIFETIME + 30:
        raise OAuthError("invalid_client", "client assertion exp is more than 5 minutes ahead", 401)
    jti = verified.get("jti")
    if not isinstance(jti, str) or not jti:
        raise OAuthError("invalid_client", "client assertion has no jti", 401)

    def remember(seen: dict[str, Any] | None) -> dict[str, Any]:
        if seen is not None:
            raise OAuthError("invalid_client", "client assertion jti was already used", 401)
        return {"exp": exp + 60}

    ExpiringMap(kv, "assertions", 1, clock=lambda: now).update(
        f"{client.client_id}:{jti}", remember
    )
    return client
