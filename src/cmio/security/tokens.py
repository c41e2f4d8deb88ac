"""Access tokens: signed JWTs issued and validated by the built-in server.

Claims (RFC 9068 JWT access tokens, SMART App Launch v2 token response):
``iss``, ``aud`` (the FHIR base URL), ``sub``, ``exp``, ``iat``, ``nbf``, ``jti``,
``scope``, ``client_id`` and, when present, ``patient``, ``fhirUser``, ``roles``.
Validation rejects a bad signature, ``alg: none`` and any algorithm not allowed,
an unknown key id, an expired or not-yet-valid token, a wrong issuer or audience,
and a revoked ``jti`` (https://datatracker.ietf.org/doc/html/rfc8725#section-3.1).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from cmio.security.grant import AccessGrant, SubjectKind
from cmio.security.keys import KeyRing
from cmio.security.kv import ExpiringMap, KeyValue

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "Revocations",
    "TokenError",
    "TokenService",
    "check_claims",
    "claims_to_grant",
    "unverified_claims",
    "unverified_header",
]

ACCESS_TOKEN_TYPE = "at+jwt"
"""The ``typ`` header of access tokens (RFC 9068 section 2.1): an id_token is not one."""

Claims = dict[str, Any]


class TokenError(Exception):
    """The token is not valid; the message says why (safe to show the caller)."""


class Revocations:
    """Revoked token ids, shared through the key-value table, cached briefly per process."""

    def __init__(
        self, kv: KeyValue, recheck_seconds: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.records = ExpiringMap(kv, "revoked", clock=clock)
        self.recheck = recheck_seconds
        self.clock = clock
        self._revoked: set[str] = set()
        self._checked: dict[str, float] = {}

    def revoke(self, jti: str, expires_at: float) -> None:
        """Revoke token ``jti`` (kept until it would have expired anyway)."""
        self.records.put(jti, {"exp": expires_at + 60})
        self._revoked.add(jti)

    def is_revoked(self, jti: str) -> bool:
        """True when ``jti`` was revoked (by any process; seen within ``recheck`` seconds)."""
        if jti in self._revoked:
            return True
        now = self.clock()
        checked = self._checked.get(jti)
        if checked is not None and now - checked < self.recheck:
            return False
        if self.records.get(jti) is not None:
            self._revoked.add(jti)
            self._checked.pop(jti, None)
            return True
        if len(self._checked) > 100_000:
            self._checked.clear()
        self._checked[jti] = now
        return False


def _b64json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, without verifying anything.

    Raises:
        TokenError: not a compact JWS.
    """
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenError("malformed token: not a compact JWS")
    try:
        header = _b64json(parts[0])
    except (ValueError, UnicodeError) as exc:
        raise TokenError("malformed token header") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed token header")
    return header


def unverified_claims(token: str) -> Any:
    """The payload of a compact JWS, without verifying anything.

    Raises:
        TokenError: not a compact JWS with a JSON payload.
    """
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise TokenError("malformed token: not a compact JWS")
    try:
        return _b64json(parts[1])
    except (ValueError, UnicodeError) as exc:
        raise TokenError("malformed token payload") from exc


class TokenService:
    """Issues and validates this server's access tokens."""

    def __init__(
        self,
        keys: KeyRing,
        revocations: Revocations | None = None,
        *,
        allowed_algorithms: Iterable[str] = ("ES256", "RS256"),
        leeway: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Sign with ``keys``; accept only ``allowed_algorithms`` (never ``none`` or HMAC)."""
        self._keys = keys
        self.revocations = revocations
        self.allowed = frozenset(a for a in allowed_algorithms if a in ("ES256", "RS256"))
        self.leeway = leeway
        self.clock = clock
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        """Tokens whose signature was verified (exact text), most recent last; claims are
        still checked on every use. Saves the ~0.5 ms signature check per request."""
        self._cache_lock = threading.Lock()
        self.cache_size = 4096

    @property
    def keys(self) -> KeyRing:
        """The signing and verification keys."""
        return self._keys

    @keys.setter
    def keys(self, ring: KeyRing) -> None:
        """Replace the keys (a rotation); verified tokens are checked again."""
        with self._cache_lock:
            self._keys = ring
            self._verified.clear()

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        subject: str,
        scopes: Iterable[str],
        client_id: str,
        ttl: int = 3600,
        kind: str = "user",
        roles: Iterable[str] = (),
        patient: str | None = None,
        fhir_user: str | None = None,
        extra: Claims | None = None,
    ) -> tuple[str, Claims]:
        """Sign a new access token; returns the compact JWT and its claims."""
        now = int(self.clock())
        claims: Claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": os.urandom(16).hex(),
            "scope": " ".join(sorted(set(scopes))),
            "client_id": client_id,
            "kind": kind,
        }
        if roles:
            claims["roles"] = sorted(set(roles))
        if patient:
            claims["patient"] = patient
        if fhir_user:
            claims["fhirUser"] = fhir_user
        if extra:
            claims.update(extra)
        return self.sign(claims), claims

    def sign(self, claims: Claims, typ: str = ACCESS_TOKEN_TYPE) -> str:
        """Sign arbitrary claims with the current key (``typ`` header as given)."""
        key = self.keys.current
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def verify_signature(self, token: str, typ: str = ACCESS_TOKEN_TYPE) -> Claims:
        """Check the header and signature only (no claim checks); returns the claims.

        Raises:
            TokenError: malformed, algorithm not allowed, unknown key or bad signature.
        """
        cacheable = typ == ACCESS_TOKEN_TYPE
        if cacheable:
            with self._cache_lock:
                known = self._verified.get(token)
                if known is not None:
                    self._verified.move_to_end(token)
                    return dict(known)
        header = unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed:
            raise TokenError(f"token algorithm {alg!r} is not allowed")
        if header.get("typ") != typ:
            raise TokenError(f"token type must be {typ!r}")
        kid = header.get("kid")
        key = self.keys.find(kid) if isinstance(kid, str) else None
        if key is None or key.alg != alg:
            raise TokenError("token signed with an unknown key")
        try:
            decoded = jwt.decode(token, key.key, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            raise TokenError("token signature is not valid") from exc
        claims = decoded.claims
        if not isinstance(claims, dict):
            raise TokenError("token claims are not a JSON object")
        if cacheable:
            with self._cache_lock:
                self._verified[token] = dict(claims)
                while len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)
        return dict(claims)

    def validate(self, token: str, *, issuer: str, audience: str) -> Claims:
        """Validate an access token for this server and FHIR base; returns its claims.

        Raises:
            TokenError: the token is not valid (the message says why).
        """
        claims = self.verify_signature(token)
        check_claims(claims, issuer=issuer, audience=audience, now=self.clock(), leeway=self.leeway)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise TokenError("token has no jti")
        if self.revocations is not None and self.revocations.is_revoked(jti):
            raise TokenError("token has been revoked")
        return claims


def check_claims(
    claims: Claims, *, issuer: str, audience: str | None, now: float, leeway: int = 30
) -> None:
    """Check ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` and ``sub`` (RFC 7519 section 4.1).

    Raises:
        TokenError: a claim is missing or wrong.
    """
    if claims.get("iss") != issuer:
        raise TokenError("token issuer is not accepted")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience is not None and audience not in audiences:
        raise TokenError("token audience is not this server")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("token has no expiry")
    if exp + leeway < now:
        raise TokenError("token has expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int | float) or value - leeway > now):
            raise TokenError(f"token is not valid yet ({name})")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("token has no subject")


def claims_to_grant(claims: Claims) -> AccessGrant:
    """The :class:`AccessGrant` of validated access-token claims."""
    scope = claims.get("scope", "")
    scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope or ()]
    roles = claims.get("roles") or ()
    kind: SubjectKind = "client" if claims.get("kind") == "client" else "user"
    return AccessGrant(
        subject=str(claims["sub"]),
        kind=kind,
        scopes=frozenset(scopes),
        roles=frozenset(str(r) for r in roles),
        patient=claims.get("patient"),
        fhir_user=claims.get("fhirUser"),
        client_id=claims.get("client_id"),
        token_id=claims.get("jti"),
        break_glass=None,
        authenticated=True,
    )
