"""The ``/auth/*`` routes: web login and logout, authorize, token, introspect, revoke.

HTML pages are small and accessible (labelled fields, one ``h1``, errors announced
with ``role=alert``); forms are ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cmio.security.oauth.server import AuthServer

__all__ = ["auth_routes", "page", "read_form", "threaded"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:28rem;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input{font-size:1rem;padding:.4rem;width:100%}"
    "button{font-size:1rem;margin:1rem .5rem 0 0;padding:.5rem 1rem}"
    "[role=alert]{color:#a00;font-weight:600}"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """An accessible HTML page (no caching, no framing)."""
    return HTMLResponse(
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></html>",
        status_code=status,
        headers={"cache-control": "no-store", "x-frame-options": "DENY"},
    )


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form body (the last value of a repeated field wins)."""
    body = await request.body()
    if len(body) > 64 * 1024:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


SyncHandler = Callable[[Request, dict[str, str]], Response]


def threaded(handler: SyncHandler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that reads the form, then runs ``handler`` on a worker thread (password
    hashing and store access must not block the event loop)."""

    async def endpoint(request: Request) -> Response:
        form = await read_form(request) if request.method == "POST" else {}
        return await run_in_threadpool(handler, request, form)

    return endpoint


def _safe_next(target: str | None) -> str:
    """Only a local path (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_form(next_path: str, error: str | None = None, name: str = "") -> HTMLResponse:
    alert = f"<p role='alert'>{html.escape(error)}</p>" if error else ""
    return page(
        "Sign in to cmio",
        f"{alert}<form method='post' action='/auth/login'>"
        f"<input type='hidden' name='next' value='{html.escape(next_path)}'>"
        "<label for='username'>User name</label>"
        f"<input id='username' name='username' autocomplete='username' required "
        f"value='{html.escape(name)}'>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' "
        "autocomplete='current-password' required>"
        "<button type='submit'>Sign in</button></form>",
        401 if error else 200,
    )


def session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    """Set the web session cookie: HttpOnly, SameSite=Lax, Secure over TLS."""
    from cmio.api.auth import SESSION_COOKIE

    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def auth_routes(server: AuthServer) -> list[Any]:
    """All ``/auth`` routes and the SMART discovery document."""
    from cmio.api.auth import SESSION_COOKIE, discovery_routes, fhir_base

    def login(request: Request, form: dict[str, str]) -> Response:
        if request.method == "GET":
            return _login_form(_safe_next(request.query_params.get("next")))
        name = form.get("username", "")
        token = server.login(
            name, form.get("password", ""), fhir_base(request.scope), _remote(request)
        )
        next_path = _safe_next(form.get("next"))
        if token is None:
            return _login_form(next_path, "The user name or password is not right.", name)
        response = RedirectResponse(next_path, status_code=303)
        session_cookie(response, request, token, server.settings.session_ttl)
        return response

    def logout(request: Request, form: dict[str, str]) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            server.logout(token, fhir_base(request.scope), _remote(request))
        response = page("Signed out", "<p><a href='/auth/login'>Sign in again</a></p>")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    routes: list[Any] = discovery_routes()
    routes += [
        Route("/auth/login", threaded(login), methods=["GET", "POST"]),
        Route("/auth/logout", threaded(logout), methods=["GET", "POST"]),
    ]
    from cmio.api.auth_oauth import oauth_routes

    routes += oauth_routes(server)
    return routes
