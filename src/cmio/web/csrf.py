"""Cross-site request forgery protection for the web app's actions.

Double-submit token (https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html):
every page carries the ``cmio_csrf`` cookie's value in its ``hx-headers``; a POST,
PUT, PATCH or DELETE to the web app must send it back as ``X-CSRF-Token`` and, when
the browser says where it comes from, come from this origin. The session cookie is
``SameSite=Lax`` on top.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from cmio.web.context import CSRF_COOKIE

__all__ = ["CsrfMiddleware"]

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _cookie(raw: bytes | None, name: str) -> str | None:
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _same_origin(headers: dict[bytes, bytes]) -> bool:
    origin = headers.get(b"origin")
    if origin is None or origin == b"null":
        return origin is None
    host = headers.get(b"host", b"")
    return origin.split(b"://", 1)[-1] == host


class CsrfMiddleware:
    """ASGI middleware: sets the token cookie, checks it on unsafe methods."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        token = _cookie(headers.get(b"cookie"), CSRF_COOKIE)
        fresh = token is None or len(token) != 43
        if fresh:
            token = secrets.token_urlsafe(32)
        assert token is not None
        scope["cmio.csrf"] = token
        if scope.get("method") in _UNSAFE:
            sent = headers.get(b"x-csrf-token", b"").decode("latin-1")
            if fresh or not hmac.compare_digest(sent, token) or not _same_origin(headers):
                await _refuse(send)
                return
        if not fresh:
            await self.app(scope, receive, send)
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Strict{secure}".encode("latin-1")

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def _refuse(send: Any) -> None:
    body = (
        b"<!doctype html><html lang='en'><meta charset='utf-8'><title>Refused</title>"
        b"<main><h1>Refused</h1><p>This action needs the page's security token: reload "
        b"the page and try again.</p></main></html>"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
