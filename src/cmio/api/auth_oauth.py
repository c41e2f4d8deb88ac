"""The OAuth 2.0 endpoints: authorize, token, introspect, revoke (filled in below)."""

from __future__ import annotations

from typing import Any

from cmio.security.oauth.server import AuthServer

__all__ = ["oauth_routes"]


def oauth_routes(server: AuthServer) -> list[Any]:
    """The authorize, token, introspect and revoke routes."""
    return []
