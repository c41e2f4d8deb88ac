"""Trusted CDS clients: the JWTs a CDS client signs for a CDS Hooks call.

A CDS client (an EHR calling this server's ``/cds-services``) authenticates with a JWT
it signs itself; the server trusts the issuers configured in ``Settings.cds_clients``
(a JSON file: issuer -> JWKS, or the JWKS's URL fetched on first use). The token's
``aud`` must be the endpoint URL, with ``exp`` in the future and a ``jti``; see
https://cds-hooks.hl7.org/2.0/#trusting-cds-clients.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["TrustedClients", "jwt_issuer"]

_ALGORITHMS = ["ES384", "RS384", "ES256", "RS256"]


def _claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified ({} when it is not one)."""
    try:
        part = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def jwt_issuer(token: str) -> str | None:
    """The ``iss`` claim of a JWT, unverified (None: no string issuer)."""
    issuer = _claims(token).get("iss")
    return issuer if isinstance(issuer, str) else None


class TrustedClients:
    """The CDS clients whose JWTs this server accepts.

    Attributes:
        clients: issuer -> JWKS (a JSON object, or its URL fetched on first use).
    """

    def __init__(self, clients: dict[str, Any] | None = None) -> None:
        self.clients: dict[str, Any] = dict(clients or {})
        self._keysets: dict[str, Any] = {}

    @classmethod
    def from_file(cls, path: str | Path | None) -> TrustedClients:
        """The clients of a ``CMIO_CDS_CLIENTS`` JSON file (none when ``path`` is empty).

        Raises:
            ValueError: the file cannot be read, is not JSON, or is not an object.
        """
        if not path:
            return cls()
        path = Path(path)
        try:
            trusted = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"CMIO_CDS_CLIENTS {path}: not a readable JSON file ({exc})") from exc
        if not isinstance(trusted, dict):
            raise ValueError(f"CMIO_CDS_CLIENTS {path}: expected {{issuer: JWKS or URL}}")
        return cls(trusted)

    def __bool__(self) -> bool:
        return bool(self.clients)

    def verify(self, token: str, url: str) -> bool:
        """Whether ``token`` is a valid JWT of a trusted client for the endpoint ``url``.

        The signature must verify with the issuer's keys, ``aud`` name ``url``, ``exp``
        lie ahead, ``jti`` be present and ``nbf`` (if any) be past, with a minute's leeway
        (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).
        """
        from joserfc import jwt
        from joserfc.errors import JoseError

        keys = self.keyset(str(_claims(token).get("iss")))
        if keys is None:
            return False
        try:
            verified = jwt.decode(token, keys, algorithms=_ALGORITHMS)
        except (JoseError, ValueError):
            return False
        claims: dict[str, Any] = dict(verified.claims)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        now = time.time()
        return (
            url in audiences
            and isinstance(claims.get("exp"), (int, float))
            and claims["exp"] > now
            and bool(claims.get("jti"))
            and (not isinstance(claims.get("nbf"), (int, float)) or claims["nbf"] <= now + 60)
        )

    def keyset(self, issuer: str) -> Any:
        """The issuer's keys (a JWKS URL is fetched once; None: not trusted or unreachable)."""
        from joserfc.jwk import KeySet

        if issuer in self._keysets:
            return self._keysets[issuer]
        jwks = self.clients.get(issuer)
        if isinstance(jwks, str):
            import httpx

            try:
                jwks = httpx.get(jwks, timeout=10).raise_for_status().json()
            except (httpx.HTTPError, ValueError):
                return None
        if not isinstance(jwks, dict):
            return None
        try:
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError):
            return None
        self._keysets[issuer] = keys
        return keys
