"""The OAuth 2.0 endpoints over HTTP: authorize (login and consent page), token,
introspect, revoke, and the EHR launch context.

See https://hl7.org/fhir/smart-app-launch/app-launch.html, RFC 6749, RFC 7662 and RFC 7009.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cmio.api.auth_routes import page, threaded
from cmio.security.oauth import authorize, grants
from cmio.security.oauth.errors import OAuthError
from cmio.security.oauth.narrowing import narrow_scopes
from cmio.security.oauth.server import AuthServer
from cmio.security.tokens import TokenError
from cmio.security.users import User

__all__ = ["oauth_routes"]

_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _error(exc: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["www-authenticate"] = 'Basic realm="cmio"'
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def _redirect_error(exc: authorize.RedirectError) -> Response:
    query = urlencode(
        {"error": exc.error, "error_description": exc.description, "state": exc.state}
    )
    sep = "&" if "?" in exc.redirect_uri else "?"
    return RedirectResponse(f"{exc.redirect_uri}{sep}{query}", status_code=302)


_SCOPE_TEXT = {
    "openid": "confirm who you are",
    "fhirUser": "know your user record",
    "launch": "open in the current patient's context",
    "launch/patient": "work with one patient you choose",
    "offline_access": "stay connected after you sign out",
    "online_access": "stay connected while you are signed in",
}


def _consent_page(
    request: authorize.AuthorizationRequest,
    signed: str,
    signed_in: User | None,
    needs_patient: bool,
    error: str | None = None,
    granted: frozenset[str] | None = None,
) -> Response:
    """The login/consent form; for a signed-in user, scopes their roles do not allow are
    marked as not granted."""

    def item(scope: str) -> str:
        note = html.escape(_SCOPE_TEXT.get(scope, ""))
        if granted is not None and scope not in granted:
            note = "<em>(not granted: beyond your role)</em>"
        return f"<li><code>{html.escape(scope)}</code> {note}</li>"

    items = "".join(item(s) for s in request.scopes)
    alert = f"<p role='alert'>{html.escape(error)}</p>" if error else ""
    if signed_in is None:
        who = (
            "<label for='username'>User name</label>"
            "<input id='username' name='username' autocomplete='username' required>"
            "<label for='password'>Password</label>"
            "<input id='password' name='password' type='password' "
            "autocomplete='current-password' required>"
        )
    else:
        who = f"<p>Signed in as <strong>{html.escape(signed_in.name)}</strong>.</p>"
    patient = (
        "<label for='patient'>Patient id</label><input id='patient' name='patient' required>"
        if needs_patient
        else ""
    )
    return page(
        "Authorize an application",
        f"{alert}<p><strong>{html.escape(request.client_name)}</strong> asks to:</p>"
        f"<ul>{items}</ul><form method='post' action='/auth/authorize'>"
        f"<input type='hidden' name='request' value='{html.escape(signed)}'>{who}{patient}"
        "<button type='submit' name='decision' value='approve'>Allow</button>"
        "<button type='submit' name='decision' value='deny'>Deny</button></form>",
        401 if error else 200,
    )


def oauth_routes(server: AuthServer) -> list[Any]:
    """The authorize, token, introspect, revoke and launch routes."""
    from cmio.api.auth import SESSION_COOKIE, fhir_base

    def remote(request: Request) -> str | None:
        return request.client.host if request.client else None

    def session_user(request: Request) -> User | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            grant = server.authenticate(cookie, fhir_base(request.scope))
        except TokenError:
            return None
        user = server.users.get(grant.subject)
        return None if user is None or user.disabled else user

    def needs_patient(req: authorize.AuthorizationRequest, user: User | None) -> bool:
        if "launch/patient" not in req.scopes or authorize.launch_patient(server, req):
            return False
        return user is None or not (user.fhir_user or "").startswith("Patient/")

    def authorize_get(request: Request, form: dict[str, str]) -> Response:
        base = fhir_base(request.scope)
        try:
            req = authorize.check_request(server, dict(request.query_params), base)
        except authorize.RedirectError as exc:
            return _redirect_error(exc)
        except OAuthError as exc:
            return page(
                "Authorization request refused",
                f"<p role='alert'>{html.escape(exc.description)}</p>",
                400,
            )
        user = session_user(request)
        signed = authorize.request_token(server, req, base)
        granted = None
        if user is not None:
            allowed = server.roles.scopes_for(user.roles)
            granted = narrow_scopes(req.scopes, allowed, interactive=True)
        return _consent_page(req, signed, user, needs_patient(req, user), granted=granted)

    def authorize_post(request: Request, form: dict[str, str]) -> Response:
        base = fhir_base(request.scope)
        try:
            req = authorize.request_from_token(server, form.get("request", ""), base)
        except OAuthError as exc:
            return page(
                "Authorization request refused",
                f"<p role='alert'>{html.escape(exc.description)}</p>",
                400,
            )
        signed = form["request"]
        user = session_user(request)
        if form.get("username"):
            name = form["username"]
            user = server.check_password(
                name, form.get("password", ""), remote(request), req.client_id
            )
            if user is None:
                return _consent_page(
                    req,
                    signed,
                    None,
                    needs_patient(req, None),
                    "The user name or password is not right.",
                )
        if user is None:
            return _consent_page(req, signed, None, needs_patient(req, None), "Please sign in.")
        if form.get("decision") != "approve":
            denied = authorize.RedirectError(
                "access_denied", "the user denied the request", req.redirect_uri, req.state
            )
            return _redirect_error(denied)
        patient = form.get("patient", "").strip() or None
        if patient is not None and not server.patient_exists(patient):
            return _consent_page(
                req, signed, user, needs_patient(req, user), f"There is no patient {patient!r}."
            )
        try:
            code = authorize.approve(server, req, user, patient)
        except authorize.RedirectError as exc:
            if needs_patient(req, user):
                return _consent_page(req, signed, user, True, "Please choose a patient.")
            return _redirect_error(exc)
        sep = "&" if "?" in req.redirect_uri else "?"
        query = urlencode({"code": code, "state": req.state})
        return RedirectResponse(f"{req.redirect_uri}{sep}{query}", status_code=302)

    def token(request: Request, form: dict[str, str]) -> Response:
        try:
            body = grants.token(
                server,
                form,
                request.headers.get("authorization"),
                fhir_base(request.scope),
                remote(request),
            )
        except OAuthError as exc:
            return _error(exc)
        return JSONResponse(body, headers=_NO_STORE)

    def introspect(request: Request, form: dict[str, str]) -> Response:
        base = fhir_base(request.scope)
        authorization = request.headers.get("authorization") or ""
        try:
            if authorization.lower().startswith("bearer "):  # a resource server's own token
                server.authenticate(authorization[7:].strip(), base)
            elif grants.authenticate_client(server, form, authorization, base) is None:
                raise OAuthError("invalid_client", "introspection needs client authentication", 401)
        except TokenError as exc:
            return _error(OAuthError("invalid_client", str(exc), 401))
        except OAuthError as exc:
            return _error(exc)
        return JSONResponse(
            grants.introspect(server, form.get("token", ""), base), headers=_NO_STORE
        )

    def revoke(request: Request, form: dict[str, str]) -> Response:
        base = fhir_base(request.scope)
        try:
            client = grants.authenticate_client(
                server, form, request.headers.get("authorization"), base
            )
            if client is None:
                raise OAuthError(
                    "invalid_client", "revocation needs client_id or authentication", 401
                )
        except OAuthError as exc:
            return _error(exc)
        grants.revoke(server, client, form.get("token", ""), remote(request))
        return JSONResponse({}, headers=_NO_STORE)

    def launch(request: Request, form: dict[str, str]) -> Response:
        """An EHR launch context for a patient (the caller is a signed-in user)."""
        base = fhir_base(request.scope)
        authorization = request.headers.get("authorization") or ""
        token_text = (
            authorization[7:].strip()
            if authorization.lower().startswith("bearer ")
            else request.cookies.get(SESSION_COOKIE, "")
        )
        try:
            grant = server.authenticate(token_text or "", base)
        except TokenError as exc:
            return JSONResponse(
                {"error": "invalid_token", "error_description": str(exc)}, status_code=401
            )
        if grant.kind != "user":
            return JSONResponse(
                {"error": "access_denied", "error_description": "only users launch apps"},
                status_code=403,
            )
        patient = form.get("patient", "").strip()
        if not patient or not server.patient_exists(patient):
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown patient"},
                status_code=400,
            )
        launch_id = authorize.create_launch(server, patient)
        return JSONResponse(
            {"launch": launch_id, "iss": server.audience_for(base)}, headers=_NO_STORE
        )

    return [
        Route("/auth/authorize", threaded(authorize_get), methods=["GET"]),
        Route("/auth/authorize", threaded(authorize_post), methods=["POST"]),
        Route("/auth/token", threaded(token), methods=["POST"]),
        Route("/auth/introspect", threaded(introspect), methods=["POST"]),
        Route("/auth/revoke", threaded(revoke), methods=["POST"]),
        Route("/auth/launch", threaded(launch), methods=["POST"]),
    ]
