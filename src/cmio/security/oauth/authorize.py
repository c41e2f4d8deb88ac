"""The authorization endpoint's logic: request checks, EHR launch contexts, codes.

Authorization code with PKCE S256 (required; RFC 7636), exact redirect-URI match,
``aud`` = the FHIR base, ``state`` required, standalone and EHR launch
(https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cmio.security.oauth.clients import Client
from cmio.security.oauth.errors import OAuthError
from cmio.security.oauth.narrowing import USER_LAUNCH_SCOPES, narrow_scopes
from cmio.security.oauth.server import AuthServer
from cmio.security.tokens import TokenError, check_claims
from cmio.security.users import User

__all__ = [
    "AuthorizationRequest",
    "RedirectError",
    "approve",
    "check_request",
    "create_launch",
    "hash_secret",
    "launch_patient",
    "request_from_token",
    "request_token",
]

CODE_TTL = 60
LAUNCH_TTL = 300
_REQUEST_TYP = "authz-request+jwt"


class RedirectError(OAuthError):
    """An error reported to the client by redirecting back to it (RFC 6749 section 4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str) -> None:
        super().__init__(error, description)
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request."""

    client_id: str
    client_name: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str
    launch: str | None = None
    nonce: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as claims (signed into the consent form)."""
        return {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "state": self.state,
            "code_challenge": self.code_challenge,
            "launch": self.launch,
            "nonce": self.nonce,
        }


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_request(
    server: AuthServer, params: Mapping[str, str], fhir_base: str
) -> AuthorizationRequest:
    """Check an authorization request.

    Raises:
        OAuthError: unknown client or redirect URI (shown to the user, never redirected).
        RedirectError: any other problem (sent back to the client's redirect URI).
    """
    client_id = params.get("client_id", "")
    client: Client | None = server.clients.get(client_id)
    if client is None or client.kind == "backend":
        raise OAuthError("invalid_client", f"unknown client {client_id!r}")
    redirect_uri = params.get("redirect_uri") or (
        client.redirect_uris[0] if len(client.redirect_uris) == 1 else ""
    )
    if redirect_uri not in client.redirect_uris:
        raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
    state = params.get("state", "")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(error, description, redirect_uri, state)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    if not state:
        raise fail("invalid_request", "state is required")
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
        raise fail("invalid_request", "PKCE is required: code_challenge with method S256")
    if params.get("aud", "").rstrip("/") != server.audience_for(fhir_base):
        raise fail("invalid_request", "aud must be this server's FHIR base URL")
    requested = params.get("scope", "").split()
    if not requested:
        raise fail("invalid_scope", "scope is required")
    launch = params.get("launch") or None
    if launch is not None and server.launches.get(_hash(launch)) is None:
        raise fail("invalid_request", "the launch context is unknown or expired")
    if client.scopes:  # a client registered with scopes gets no others
        requested = [
            s
            for s in requested
            if s in USER_LAUNCH_SCOPES or narrow_scopes([s], client.scopes, interactive=True)
        ]
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name or client.client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(dict.fromkeys(requested)),
        state=state,
        code_challenge=challenge,
        launch=launch,
        nonce=params.get("nonce") or None,
    )


def request_token(server: AuthServer, request: AuthorizationRequest, fhir_base: str) -> str:
    """The request signed for the consent form (so it cannot be altered in between)."""
    now = int(server.clock())
    claims = request.to_json()
    claims.update(iss=server.issuer_for(fhir_base), sub=request.client_id, iat=now, exp=now + 600)
    return server.tokens.sign(claims, typ=_REQUEST_TYP)


def request_from_token(server: AuthServer, token: str, fhir_base: str) -> AuthorizationRequest:
    """The request signed by :func:`request_token`.

    Raises:
        OAuthError: the form's request is missing, altered or expired.
    """
    try:
        claims = server.tokens.verify_signature(token, typ=_REQUEST_TYP)
        check_claims(claims, issuer=server.issuer_for(fhir_base), audience=None, now=server.clock())
    except TokenError as exc:
        raise OAuthError("invalid_request", f"the authorization form is not valid: {exc}") from exc
    return AuthorizationRequest(
        client_id=claims["client_id"],
        client_name=claims["client_name"],
        redirect_uri=claims["redirect_uri"],
        scopes=tuple(claims["scopes"]),
        state=claims["state"],
        code_challenge=claims["code_challenge"],
        launch=claims.get("launch"),
        nonce=claims.get("nonce"),
    )


def launch_patient(server: AuthServer, request: AuthorizationRequest) -> str | None:
    """The patient of the request's EHR launch context, if any."""
    if request.launch is None:
        return None
    context = server.launches.get(_hash(request.launch))
    return None if context is None else context.get("patient")


def approve(
    server: AuthServer, request: AuthorizationRequest, user: User, patient: str | None
) -> str:
    """Issue an authorization code for ``user``'s consent (valid once, for 60 seconds).

    Raises:
        RedirectError: ``launch/patient`` was requested but no patient was chosen.
    """
    allowed = server.roles.scopes_for(user.roles)
    scopes = narrow_scopes(request.scopes, allowed, interactive=True)
    patient = launch_patient(server, request) or patient
    if patient is None and user.fhir_user and user.fhir_user.startswith("Patient/"):
        patient = user.fhir_user.split("/", 1)[1]
    if "launch/patient" in scopes and patient is None:
        raise RedirectError(
            "invalid_request", "no patient was chosen", request.redirect_uri, request.state
        )
    if patient is not None and not server.patient_exists(patient):
        raise RedirectError(
            "invalid_request",
            "the chosen patient does not exist",
            request.redirect_uri,
            request.state,
        )
    code = secrets.token_urlsafe(32)
    server.codes.put(
        _hash(code),
        {
            "client_id": request.client_id,
            "redirect_uri": request.redirect_uri,
            "challenge": request.code_challenge,
            "scopes": sorted(scopes),
            "user": user.name,
            "patient": patient,
            "nonce": request.nonce,
            "exp": server.clock() + CODE_TTL,
            "used": False,
        },
    )
    return code


def create_launch(server: AuthServer, patient: str) -> str:
    """An EHR launch context for ``patient``: the ``launch`` value handed to the app."""
    launch = secrets.token_urlsafe(24)
    server.launches.put(_hash(launch), {"patient": patient, "exp": server.clock() + LAUNCH_TTL})
    return launch


def hash_secret(value: str) -> str:
    """The key under which a code, refresh token or launch is stored."""
    return _hash(value)
