"""The token endpoint and token management: code, refresh, client credentials,
introspection (RFC 7662) and revocation (RFC 7009).

Refresh tokens are opaque and rotate on every use; presenting a used one again
revokes its whole family (RFC 9700 section 4.14.2).
See https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-access-token and
https://hl7.org/fhir/smart-app-launch/backend-services.html.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cmio.security.oauth.assertion import ASSERTION_TYPE, verify_client_assertion
from cmio.security.oauth.authorize import hash_secret
from cmio.security.oauth.clients import Client
from cmio.security.oauth.errors import OAuthError
from cmio.security.oauth.narrowing import narrow_scopes
from cmio.security.oauth.server import AuthServer
from cmio.security.tokens import TokenError
from cmio.security.users import User

__all__ = ["authenticate_client", "introspect", "revoke", "token", "token_endpoint"]

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def token_endpoint(server: AuthServer, fhir_base: str) -> str:
    """The token endpoint URL (the ``aud`` of client assertions)."""
    return server.issuer_for(fhir_base) + "/auth/token"


def authenticate_client(
    server: AuthServer,
    form: Mapping[str, str],
    authorization: str | None,
    fhir_base: str,
) -> Client | None:
    """The client authenticated by HTTP Basic, a posted secret or a signed assertion;
    a public client named by ``client_id`` (no secret); None when nothing identifies one.

    Raises:
        OAuthError: ``invalid_client`` (401) when authentication was attempted and failed.
    """
    if form.get("client_assertion") or form.get("client_assertion_type"):
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(
                "invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}", 401
            )
        return verify_client_assertion(
            form.get("client_assertion", ""),
            clients=server.clients,
            kv=server.kv,
            token_endpoint=token_endpoint(server, fhir_base),
            now=server.clock(),
            fetch_jwks=server.client_jwks,
        )
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        client_id, secret = unquote(user), unquote(password)
    if not client_id:
        return None
    client = server.clients.get(client_id)
    if client is None:
        raise OAuthError("invalid_client", "unknown client", 401)
    if client.kind == "confidential" and client.secret_hash is not None:
        if not secret or not server.clients.check_secret(client, secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
    elif client.kind != "public":
        raise OAuthError("invalid_client", "this client authenticates with a signed assertion", 401)
    elif secret:
        raise OAuthError("invalid_client", "a public client has no secret", 401)
    return client


def token(
    server: AuthServer,
    form: Mapping[str, str],
    authorization: str | None,
    fhir_base: str,
    remote_addr: str | None = None,
) -> dict[str, Any]:
    """Answer a token request (``grant_type`` authorization_code, refresh_token or
    client_credentials).

    Raises:
        OAuthError: the request is refused (RFC 6749 section 5.2).
    """
    grant_type = form.get("grant_type", "")
    client = authenticate_client(server, form, authorization, fhir_base)
    if client is None:
        raise OAuthError("invalid_client", "client_id or client authentication is required", 401)
    if grant_type == "authorization_code":
        return _code_grant(server, client, form, fhir_base, remote_addr)
    if grant_type == "refresh_token":
        return _refresh_grant(server, client, form, fhir_base)
    if grant_type == "client_credentials":
        return _client_credentials(server, client, form, fhir_base, remote_addr)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


def _code_grant(
    server: AuthServer,
    client: Client,
    form: Mapping[str, str],
    fhir_base: str,
    remote_addr: str | None,
) -> dict[str, Any]:
    code = form.get("code", "")
    verifier = form.get("code_verifier", "")
    found: dict[str, Any] = {}

    def use(record: dict[str, Any] | None) -> dict[str, Any]:
        if record is None:
            raise OAuthError("invalid_grant", "unknown or expired authorization code")
        if record.get("used"):
            raise OAuthError("invalid_grant", "the authorization code was already used")
        found.update(record)
        return {**record, "used": True}

    server.codes.update(hash_secret(code), use)  # an expired code is no longer there
    if found["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "the code was issued to another client")
    if form.get("redirect_uri") != found["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if not _VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "code_verifier is missing or malformed")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    if not secrets.compare_digest(challenge.rstrip(b"=").decode(), found["challenge"]):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    user = server.users.get(found["user"])
    if user is None or user.disabled:
        raise OAuthError("invalid_grant", "the user is no longer active")
    scopes = frozenset(found["scopes"])
    response = _user_tokens(server, client, user, scopes, found.get("patient"), fhir_base)
    if "openid" in scopes:
        response["id_token"] = _id_token(
            server, client, user, scopes, found.get("nonce"), fhir_base
        )
    server.record("token", user.name, "success", remote_addr, client.client_id)
    return response


def _user_tokens(
    server: AuthServer,
    client: Client,
    user: User,
    scopes: frozenset[str],
    patient: str | None,
    fhir_base: str,
    family: str | None = None,
    refresh_expires: float | None = None,
) -> dict[str, Any]:
    """Access token, and a refresh token for ``offline_access`` (lives
    ``refresh_token_ttl``, extended by each rotation) or ``online_access`` (lives one
    login session, ``session_ttl``, never extended)."""
    access, claims = server.issue_for_user(
        user, fhir_base, client_id=client.client_id, scopes=scopes, patient=patient
    )
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": claims["scope"],
    }
    if patient:
        response["patient"] = patient
    if user.fhir_user and "fhirUser" in scopes:
        response["fhirUser"] = user.fhir_user
    if scopes & {"offline_access", "online_access"}:
        refresh = secrets.token_urlsafe(32)
        if "offline_access" in scopes:
            expires = server.clock() + server.settings.refresh_token_ttl
        else:
            expires = refresh_expires or server.clock() + server.settings.session_ttl
        server.refresh_tokens.put(
            hash_secret(refresh),
            {
                "client_id": client.client_id,
                "user": user.name,
                "scopes": sorted(scopes),
                "patient": patient,
                "family": family or secrets.token_hex(16),
                "exp": expires,
                "used": False,
            },
        )
        response["refresh_token"] = refresh
    return response


def _id_token(
    server: AuthServer,
    client: Client,
    user: User,
    scopes: frozenset[str],
    nonce: str | None,
    fhir_base: str,
) -> str:
    """An OpenID Connect id_token (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-identity-data)."""
    now = int(server.clock())
    claims: dict[str, Any] = {
        "iss": server.issuer_for(fhir_base),
        "sub": user.name,
        "aud": client.client_id,
        "iat": now,
        "exp": now + server.settings.access_token_ttl,
    }
    if nonce:
        claims["nonce"] = nonce
    if "fhirUser" in scopes and user.fhir_user:
        claims["fhirUser"] = f"{fhir_base}/{user.fhir_user}"
    return server.tokens.sign(claims, typ="JWT")


def _refresh_grant(
    server: AuthServer, client: Client, form: Mapping[str, str], fhir_base: str
) -> dict[str, Any]:
    presented = form.get("refresh_token", "")
    found: dict[str, Any] = {}

    def use(record: dict[str, Any] | None) -> dict[str, Any]:
        if record is None:
            raise OAuthError("invalid_grant", "unknown or expired refresh token")
        found.update(record)
        return {**record, "used": True}

    server.refresh_tokens.update(hash_secret(presented), use)
    family = str(found["family"])
    if found.get("used"):  # a rotated token presented again: stolen; end the family
        _revoke_family(server, family)
        raise OAuthError("invalid_grant", "the refresh token was already used")
    if server.families.get(family) is not None:
        raise OAuthError("invalid_grant", "the refresh token has been revoked")
    if found["client_id"] != client.client_id:
        raise OAuthError("invalid_grant", "the refresh token was issued to another client")
    user = server.users.get(found["user"])
    if user is None or user.disabled:
        raise OAuthError("invalid_grant", "the user is no longer active")
    scopes = frozenset(found["scopes"])
    if form.get("scope"):
        asked = frozenset(form["scope"].split())
        if not asked <= scopes:
            raise OAuthError("invalid_scope", "a refresh cannot add scopes")
        scopes = asked
    return _user_tokens(
        server, client, user, scopes, found.get("patient"), fhir_base, family, found["exp"]
    )


def _client_credentials(
    server: AuthServer,
    client: Client,
    form: Mapping[str, str],
    fhir_base: str,
    remote_addr: str | None,
) -> dict[str, Any]:
    if client.kind != "backend":
        raise OAuthError("unauthorized_client", "client_credentials is for backend services")
    requested = form.get("scope", "").split()
    scopes = narrow_scopes(requested, client.scopes, interactive=False)
    if not scopes:
        raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
    access, claims = server.tokens.issue(
        issuer=server.issuer_for(fhir_base),
        audience=server.audience_for(fhir_base),
        subject=client.client_id,
        scopes=scopes,
        client_id=client.client_id,
        ttl=min(server.settings.access_token_ttl, 300),
        kind="client",
    )
    server.record("token", client.client_id, "success", remote_addr, client.client_id)
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": claims["scope"],
    }


def introspect(server: AuthServer, presented: str, fhir_base: str) -> dict[str, Any]:
    """RFC 7662 introspection of an access or refresh token (the caller is authenticated)."""
    if presented.count(".") == 2:
        try:
            claims = server.tokens.validate(
                presented,
                issuer=server.issuer_for(fhir_base),
                audience=server.audience_for(fhir_base),
            )
        except TokenError:
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}
    record = server.refresh_tokens.get(hash_secret(presented))
    if record is None or record.get("used") or server.families.get(record["family"]):
        return {"active": False}
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": record["client_id"],
        "sub": record["user"],
        "scope": " ".join(record["scopes"]),
        "exp": int(record["exp"]),
        **({"patient": record["patient"]} if record.get("patient") else {}),
    }


def revoke(server: AuthServer, client: Client, presented: str, remote_addr: str | None) -> None:
    """RFC 7009 revocation: an access token's jti, or a refresh token's whole family.

    A token of another client, or an unknown one, is ignored (the answer is 200 either way).
    """
    if presented.count(".") == 2:
        try:
            claims = server.tokens.verify_signature(presented)
        except TokenError:
            return
        if claims.get("client_id") != client.client_id or not isinstance(claims.get("jti"), str):
            return
        server.revocations.revoke(claims["jti"], float(claims.get("exp", server.clock())))
        server.record("revoke", str(claims.get("sub")), "success", remote_addr, client.client_id)
        return
    record = server.refresh_tokens.get(hash_secret(presented))
    if record is None or record.get("client_id") != client.client_id:
        return
    _revoke_family(server, str(record["family"]))
    server.record("revoke", str(record.get("user")), "success", remote_addr, client.client_id)


def _revoke_family(server: AuthServer, family: str) -> None:
    """Revoke every refresh token of a family (for as long as any of them could live)."""
    expires = server.clock() + server.settings.refresh_token_ttl
    server.families.put(family, {"exp": expires})
