"""Registered OAuth clients: public, confidential and backend-service clients.

Redirect URIs match exactly (RFC 9700 section 2.1); confidential clients hold an
argon2id hash of their secret; backend services register a JWKS (inline or by
URL) for ``private_key_jwt`` (https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cmio.security.kv import KeyValue

__all__ = ["Client", "ClientKind", "ClientRegistry"]

ClientKind = Literal["public", "confidential", "backend"]
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_DOC = "clients"


@dataclass(frozen=True, slots=True)
class Client:
    """One registered client.

    Attributes:
        client_id: the id.
        kind: ``public`` (PKCE only), ``confidential`` (a secret, or a JWKS for
            ``private_key_jwt``) or ``backend`` (JWKS, client_credentials).
        name: shown on the consent page.
        redirect_uris: allowed redirect URIs (exact match).
        scopes: scopes the client may ever get (``system/...`` for backend clients).
        secret_hash: argon2id hash of a confidential client's secret.
        jwks: a backend client's public keys.
        jwks_url: or where to fetch them.
    """

    client_id: str
    kind: ClientKind
    name: str = ""
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    secret_hash: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    disabled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "kind": self.kind,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "scopes": list(self.scopes),
            "secret_hash": self.secret_hash,
            "jwks": self.jwks,
            "jwks_url": self.jwks_url,
            "disabled": self.disabled,
        }

    @classmethod
    def from_json(cls, client_id: str, data: dict[str, Any]) -> Client:
        """Read the stored form."""
        return cls(
            client_id=client_id,
            kind=data["kind"],
            name=data.get("name", ""),
            redirect_uris=tuple(data.get("redirect_uris", ())),
            scopes=tuple(data.get("scopes", ())),
            secret_hash=data.get("secret_hash"),
            jwks=data.get("jwks"),
            jwks_url=data.get("jwks_url"),
            disabled=bool(data.get("disabled", False)),
        )


class ClientRegistry:
    """Register and look up clients (stored in the key-value table)."""

    def __init__(self, kv: KeyValue, hasher: PasswordHasher | None = None) -> None:
        self.kv = kv
        self.hasher = hasher or PasswordHasher()

    def get(self, client_id: str) -> Client | None:
        """The enabled client ``client_id``, or None."""
        data = (self.kv.get(_DOC) or {}).get(client_id)
        if data is None:
            return None
        client = Client.from_json(client_id, data)
        return None if client.disabled else client

    def list(self) -> list[Client]:
        """All clients, by id."""
        return [Client.from_json(i, d) for i, d in sorted((self.kv.get(_DOC) or {}).items())]

    def register(
        self,
        client_id: str,
        kind: ClientKind,
        *,
        name: str = "",
        redirect_uris: tuple[str, ...] = (),
        scopes: tuple[str, ...] = (),
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        replace: bool = False,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a confidential client, its new secret.

        Raises:
            ValueError: invalid id, kind, redirect URI, or a backend client without keys.
        """
        if not _ID_RE.fullmatch(client_id):
            raise ValueError(f"client id {client_id!r} is not valid")
        if kind not in ("public", "confidential", "backend"):
            raise ValueError(f"client kind must be public, confidential or backend, not {kind!r}")
        for uri in redirect_uris:
            if not _redirect_ok(uri):
                raise ValueError(
                    f"redirect URI {uri!r} must be https, http on loopback or a private-use"
                    " scheme, without a fragment"
                )
        if kind != "backend" and not redirect_uris:
            raise ValueError("a public or confidential client needs a redirect URI")
        if kind == "backend" and not jwks and not jwks_url:
            raise ValueError("a backend client needs a JWKS (file) or a JWKS URL")
        if kind == "public" and (jwks or jwks_url):
            raise ValueError("a public client has no keys")
        if jwks is not None and not isinstance(jwks.get("keys"), list):
            raise ValueError("the JWKS must be a JSON object with a keys array")
        # a confidential client authenticates with its keys (asymmetric) or a secret
        asymmetric = bool(jwks or jwks_url)
        secret = secrets.token_urlsafe(32) if kind == "confidential" and not asymmetric else None
        client = Client(
            client_id,
            kind,
            name=name or client_id,
            redirect_uris=tuple(redirect_uris),
            scopes=tuple(scopes),
            secret_hash=self.hasher.hash(secret) if secret else None,
            jwks=jwks,
            jwks_url=jwks_url,
        )

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {}
            if client_id in doc and not replace:
                raise ValueError(f"client {client_id!r} already exists")
            doc[client_id] = client.to_json()
            return doc

        self.kv.update(_DOC, change)
        return client, secret

    def check_secret(self, client: Client, secret: str) -> bool:
        """True when ``secret`` is the confidential client's secret."""
        if client.secret_hash is None:
            return False
        try:
            return bool(self.hasher.verify(client.secret_hash, secret))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _redirect_ok(uri: str) -> bool:
    """https, http on loopback, or a private-use scheme (RFC 8252 sections 7.1, 7.3)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.scheme:
        return False
    if parts.scheme == "https":
        return bool(parts.netloc)
    if parts.scheme == "http":
        return parts.hostname in ("127.0.0.1", "localhost", "::1")
    return "." in parts.scheme
