"""Authentication over HTTP: the bearer check in front of every route, and the auth routes.

Every request needs a valid bearer token (RFC 6750), or the web app's session cookie
for page reads, except ``/fhir/metadata``, ``/.well-known/smart-configuration``,
``/auth/*`` (login, authorize, token, introspect, revoke, jwks, logout) and ``/health``.
A missing or invalid token gets 401 with ``WWW-Authenticate: Bearer ...`` and an
OperationOutcome; a valid one becomes the request's
:class:`~cmio.security.grant.AccessGrant` (``scope["cmio.grant"]``).
See https://hl7.org/fhir/smart-app-launch/app-launch.html.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmio.api.asgi import Receive, Scope, Send
from cmio.api.errors import OutcomeIssue, operation_outcome
from cmio.security.oauth.server import AuthServer
from cmio.security.tokens import TokenError

__all__ = [
    "GRANT_KEY",
    "PUBLIC_PATHS",
    "SESSION_COOKIE",
    "AuthGate",
    "discovery_routes",
    "fhir_base",
    "openid_configuration",
    "send_unauthorized",
    "smart_configuration",
]

GRANT_KEY = "cmio.grant"
"""Where the gate leaves the request's AccessGrant in the ASGI scope."""

SESSION_COOKIE = "cmio_session"
PUBLIC_PATHS = frozenset(
    {
        "/fhir/metadata",
        "/.well-known/smart-configuration",
        "/health",
        "/healthz",
        "/readyz",
        "/favicon.ico",  # the browser asks for it on the sign-in page too
    }
)
_ROUTED = ("/auth/", "/.well-known/smart-configuration", "/.well-known/openid-configuration")
_REALM = 'Bearer realm="cmio"'


def fhir_base(scope: Scope) -> str:
    """The FHIR base URL this request reached (``{scheme}://{host}{root}/fhir``)."""
    host = None
    for key, value in scope.get("headers", ()):
        if key == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/fhir"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def _send_json(
    send: Send, status: int, body: Any, headers: list[tuple[str, str]], ctype: str
) -> None:
    data = orjson.dumps(body)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw += [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())]
    raw.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def send_unauthorized(
    send: Send, description: str, error: str | None = "invalid_token", status: int = 401
) -> None:
    """401 with ``WWW-Authenticate`` (RFC 6750 section 3) and an OperationOutcome."""
    challenge = _REALM
    if error:
        safe = description.replace('"', "'").replace("\\", "/")
        challenge += f', error="{error}", error_description="{safe}"'
    outcome = operation_outcome([OutcomeIssue("error", "login", description)])
    await _send_json(
        send, status, outcome, [("www-authenticate", challenge)], "application/fhir+json"
    )


class AuthGate:
    """The bearer check and the authentication routes, in front of the whole app."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server
        from cmio.api.auth_routes import auth_routes

        self.routes = Starlette(routes=auth_routes(server))
        self.routes.state.auth = server

    async def intercept(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer auth routes and refusals (True), or admit the request with a grant (False)."""
        if scope["type"] != "http":
            return False
        path: str = scope.get("path", "")
        if path.startswith(_ROUTED):
            await self.routes(scope, receive, send)
            return True
        if path in PUBLIC_PATHS:
            return False
        method = scope.get("method", "GET")
        authorization = _header(scope, b"authorization")
        token: str | None = None
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip() or " " in value.strip():
                await send_unauthorized(send, "Authorization header must be 'Bearer TOKEN'")
                return True
            token = value.strip()
        elif method in ("GET", "HEAD") or not path.startswith("/fhir"):
            # the web app's session: page reads, and web actions (which the web app's
            # CSRF check guards); FHIR writes always need a bearer token
            token = _cookie(scope, SESSION_COOKIE)
        if token is None:
            if method == "GET" and not path.startswith("/fhir") and _wants_html(scope):
                await _redirect(send, "/auth/login?next=" + quote(path, safe="/"))
                return True
            await send_unauthorized(send, "Authentication required: send a bearer token", None)
            return True
        base = fhir_base(scope)
        try:
            if self.server.oidc is not None:  # may fetch the issuer's JWKS
                grant = await asyncio.to_thread(self.server.authenticate, token, base)
            else:
                grant = self.server.authenticate(token, base)
        except TokenError as exc:
            await send_unauthorized(send, str(exc))
            return True
        scope[GRANT_KEY] = grant
        return False


def _wants_html(scope: Scope) -> bool:
    return "text/html" in (_header(scope, b"accept") or "")


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def smart_configuration(server: AuthServer, base: str) -> dict[str, Any]:
    """The SMART App Launch v2 discovery document
    (https://hl7.org/fhir/smart-app-launch/conformance.html)."""
    origin = server.issuer_for(base)
    return {
        "issuer": origin,
        "jwks_uri": f"{origin}/auth/jwks",
        "authorization_endpoint": f"{origin}/auth/authorize",
        "token_endpoint": f"{origin}/auth/token",
        "introspection_endpoint": f"{origin}/auth/introspect",
        "revocation_endpoint": f"{origin}/auth/revoke",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": [
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "offline_access",
            "online_access",
            "patient/*.cruds",
            "user/*.cruds",
            "system/*.cruds",
        ],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-ehr-patient",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-offline",
            "permission-online",
            "permission-patient",
            "permission-user",
            "permission-v2",
        ],
    }


async def discovery(request: Request) -> Response:
    """``GET /.well-known/smart-configuration``."""
    server: AuthServer = request.app.state.auth
    return JSONResponse(smart_configuration(server, fhir_base(request.scope)))


def openid_configuration(server: AuthServer, base: str) -> dict[str, Any]:
    """OpenID Provider metadata for the id_tokens of ``sso-openid-connect``
    (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata)."""
    origin = server.issuer_for(base)
    return {
        "issuer": origin,
        "authorization_endpoint": f"{origin}/auth/authorize",
        "token_endpoint": f"{origin}/auth/token",
        "jwks_uri": f"{origin}/auth/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": sorted({k.alg for k in server.keys.keys}),
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
    }


async def openid_discovery(request: Request) -> Response:
    """``GET /.well-known/openid-configuration``."""
    server: AuthServer = request.app.state.auth
    return JSONResponse(openid_configuration(server, fhir_base(request.scope)))


async def jwks(request: Request) -> Response:
    """``GET /auth/jwks``: the public signing keys."""
    server: AuthServer = request.app.state.auth
    return JSONResponse(server.keys.jwks(), headers={"cache-control": "max-age=300"})


def discovery_routes() -> list[Route]:
    """The discovery and JWKS routes."""
    return [
        Route("/.well-known/smart-configuration", discovery),
        Route("/.well-known/openid-configuration", openid_discovery),
        Route("/auth/jwks", jwks),
    ]
