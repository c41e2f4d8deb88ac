"""An external OpenID Connect issuer: its JWT access tokens accepted by configuration.

The issuer's ``jwks_uri`` comes from its discovery document
(https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig); keys are
cached and fetched again (at most once a minute) when a token names an unknown key.
Claims map to an :class:`AccessGrant`: roles from a configurable claim, SMART scopes
from ``scope``/``scp`` (or, when the token has none, the scopes of its roles).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cmio.security.grant import AccessGrant, SubjectKind
from cmio.security.roles import RoleTable
from cmio.security.tokens import TokenError, check_claims, unverified_header

__all__ = ["ExternalIssuer", "http_fetch"]

Fetch = Callable[[str], dict[str, Any]]


def http_fetch(url: str) -> dict[str, Any]:
    """GET a JSON document (5 s timeout)."""
    import httpx

    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    value = response.json()
    if not isinstance(value, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return value


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ExternalIssuer:
    """Validates the JWTs of one external OIDC issuer."""

    def __init__(
        self,
        issuer: str,
        *,
        audience: str | None = None,
        roles_claim: str = "roles",
        fetch: Fetch | None = None,
        allowed_algorithms: Iterable[str] = ("RS256", "ES256", "RS384", "ES384", "PS256"),
        cache_seconds: float = 3600.0,
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Trust ``issuer``.

        Args:
            issuer: the issuer URL, exactly as in its tokens' ``iss``.
            audience: the ``aud`` its tokens must carry (else the FHIR base URL).
            roles_claim: the claim holding roles (dotted path, e.g. ``realm_access.roles``).
            fetch: how to GET JSON (tests pass a stub).
            allowed_algorithms: asymmetric algorithms accepted (never ``none`` or HMAC).
            cache_seconds: how long the keys are kept before fetching them again.
            leeway: clock skew allowed, seconds.
            clock: the time source.
        """
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.roles_claim = roles_claim
        self.fetch = fetch or http_fetch
        self.allowed = frozenset(a for a in allowed_algorithms if a[:2] in ("RS", "ES", "PS"))
        self.cache_seconds = cache_seconds
        self.leeway = leeway
        self.clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _jwks_uri(self) -> str:
        config = self.fetch(self.issuer + "/.well-known/openid-configuration")
        if str(config.get("issuer", "")).rstrip("/") != self.issuer:
            raise TokenError("the OIDC discovery document names another issuer")
        uri = config.get("jwks_uri")
        if not isinstance(uri, str) or not uri:
            raise TokenError("the OIDC discovery document has no jwks_uri")
        return uri

    def keys(self, refresh: bool = False) -> KeySet:
        """The issuer's keys (cached; ``refresh`` fetches again unless fetched < 60 s ago)."""
        with self._lock:
            age = self.clock() - self._fetched_at
            stale = self._keys is None or age > self.cache_seconds or (refresh and age > 60)
            if stale:
                try:
                    self._keys = KeySet.import_key_set(self.fetch(self._jwks_uri()))  # type: ignore[arg-type]
                except TokenError:
                    raise
                except Exception as exc:  # network or malformed JWKS
                    if self._keys is None:
                        raise TokenError("the external issuer's keys are unavailable") from exc
                self._fetched_at = self.clock()
            assert self._keys is not None
            return self._keys

    def validate(self, token: str, audience: str) -> dict[str, Any]:
        """Verify signature and claims; returns the claims.

        Raises:
            TokenError: the token is not valid.
        """
        header = unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed:
            raise TokenError(f"token algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        keys = self.keys()
        if isinstance(kid, str) and not any(k.kid == kid for k in keys.keys):
            keys = self.keys(refresh=True)
        candidates = [k for k in keys.keys if not isinstance(kid, str) or k.kid == kid]
        if not candidates:
            raise TokenError("token signed with an unknown key")
        for key in candidates:
            try:
                claims = dict(jwt.decode(token, key, algorithms=[alg]).claims)
                break
            except (JoseError, ValueError):
                continue
        else:
            raise TokenError("token signature is not valid")
        check_claims(
            claims,
            issuer=self.issuer,
            audience=self.audience or audience,
            now=self.clock(),
            leeway=self.leeway,
        )
        return claims

    def grant(self, token: str, *, audience: str, role_table: RoleTable) -> AccessGrant:
        """Validate ``token`` and map its claims to a grant.

        Raises:
            TokenError: the token is not valid.
        """
        claims = self.validate(token, audience)
        raw_roles = _claim(claims, self.roles_claim) or ()
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        roles = frozenset(str(r) for r in raw_roles if str(r) in role_table.scopes_by_role)
        scope = claims.get("scope", claims.get("scp", ""))
        scopes = frozenset(scope.split() if isinstance(scope, str) else map(str, scope))
        if not any("/" in s for s in scopes):  # no SMART scopes: those of the roles
            scopes = scopes | role_table.scopes_for(roles)
        subject = claims.get("preferred_username") or claims["sub"]
        client_id = claims.get("client_id") or claims.get("azp")
        kind: SubjectKind = "client" if client_id and client_id == claims["sub"] else "user"
        return AccessGrant(
            subject=str(subject),
            kind=kind,
            scopes=scopes,
            roles=roles,
            patient=claims.get("patient"),
            fhir_user=claims.get("fhirUser"),
            client_id=str(client_id) if client_id else None,
            token_id=str(claims.get("jti")) if claims.get("jti") else None,
        )
