"""Authentication settings (``Settings.auth``; None switches authentication off)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["AuthSettings"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How the server authenticates callers.

    Attributes:
        issuer: the public origin of the built-in authorization server
            (``https://cmio.example.org``); None: taken from each request's Host.
        key_file: the signing keys (private JWK Set or PEM, 0600); None: ``auth-keys.json``
            beside the SQLite database (``cmio-data/auth-keys.json`` for PostgreSQL).
        signing_alg: ``ES256`` or ``RS256`` for a key generated on first start.
        access_token_ttl: access-token lifetime in seconds.
        refresh_token_ttl: refresh-token lifetime in seconds (rotated on each use).
        session_ttl: lifetime of the web app's login session.
        oidc_issuer: an external OpenID Connect issuer whose JWTs are accepted too.
        oidc_audience: the ``aud`` its tokens must carry (default: the FHIR base URL).
        oidc_roles_claim: the claim with the user's roles (dotted path allowed).
        password_time_cost: argon2id iterations.
        password_memory_kib: argon2id memory in KiB.
    """

    issuer: str | None = None
    key_file: str | None = None
    signing_alg: str = "ES256"
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    session_ttl: int = 8 * 3600
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_roles_claim: str = "roles"
    password_time_cost: int = 3
    password_memory_kib: int = 65536

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> AuthSettings | None:
        """Settings from ``CMIO_AUTH`` (``off`` disables), ``CMIO_ISSUER``,
        ``CMIO_JWT_KEY_FILE``, ``CMIO_OIDC_ISSUER``, ``CMIO_OIDC_AUDIENCE``,
        ``CMIO_OIDC_ROLES_CLAIM``, ``CMIO_ACCESS_TOKEN_TTL`` and the argon2id costs
        ``CMIO_PASSWORD_TIME_COST``, ``CMIO_PASSWORD_MEMORY_KIB``."""
        if environ.get("CMIO_AUTH", "on").strip().lower() in ("off", "0", "false", "no"):
            return None
        defaults = cls()
        return cls(
            issuer=environ.get("CMIO_ISSUER") or None,
            key_file=environ.get("CMIO_JWT_KEY_FILE") or None,
            signing_alg=environ.get("CMIO_JWT_ALG", defaults.signing_alg),
            access_token_ttl=int(environ.get("CMIO_ACCESS_TOKEN_TTL", defaults.access_token_ttl)),
            oidc_issuer=environ.get("CMIO_OIDC_ISSUER") or None,
            oidc_audience=environ.get("CMIO_OIDC_AUDIENCE") or None,
            oidc_roles_claim=environ.get("CMIO_OIDC_ROLES_CLAIM", defaults.oidc_roles_claim),
            password_time_cost=int(
                environ.get("CMIO_PASSWORD_TIME_COST", defaults.password_time_cost)
            ),
            password_memory_kib=int(
                environ.get("CMIO_PASSWORD_MEMORY_KIB", defaults.password_memory_kib)
            ),
        )
