"""The authorization server's core: keys, tokens, users, clients, bearer validation.

Framework-free. The HTTP routes (``cmio.api.auth``) call :class:`AuthServer`;
the authorization-code, refresh, client-credentials, introspection and revocation
logic is in :mod:`cmio.security.oauth.grants` and :mod:`cmio.security.oauth.authorize`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from cmio.security.grant import AccessGrant
from cmio.security.keys import KeyRing
from cmio.security.kv import ExpiringMap, KeyValue, RepositoryKeyValue
from cmio.security.oauth.clients import ClientRegistry
from cmio.security.oauth.settings import AuthSettings
from cmio.security.oidc import http_fetch
from cmio.security.roles import RoleTable
from cmio.security.tokens import Revocations, TokenError, TokenService, claims_to_grant
from cmio.security.users import User, UserStore
from cmio.store.base import Repository

__all__ = ["FREE_FAILURES", "WEB_CLIENT_ID", "AuditHook", "AuthServer", "default_key_file"]

AuditHook = Callable[..., None]
"""Called as ``audit(action=, subject=, outcome=, remote_addr=, client_id=)`` on login,
failed login, logout, token issue and revocation."""

FREE_FAILURES = 5
"""Failed logins in a row before a user name is locked for a while."""

WEB_CLIENT_ID = "cmio-web"
"""The client id of the web app's own login session."""


def default_key_file(repository: Repository) -> Path:
    """``auth-keys.json`` beside a SQLite database, else ``cmio-data/auth-keys.json``."""
    path = getattr(repository, "path", None)
    if isinstance(path, Path):
        return path.parent / "auth-keys.json"
    return Path("cmio-data/auth-keys.json")


class AuthServer:
    """Everything authentication needs, built once per server."""

    def __init__(
        self,
        settings: AuthSettings,
        kv: KeyValue,
        keys: KeyRing,
        *,
        role_table: RoleTable | None = None,
        oidc: Any = None,
        clock: Callable[[], float] = time.time,
        patient_exists: Callable[[str], bool] | None = None,
    ) -> None:
        """Build the server from its settings, state table and signing keys.

        Args:
            settings: the authentication settings.
            kv: where users, clients, codes, refresh tokens and revocations live.
            keys: the signing keys.
            role_table: roles and their scopes.
            oidc: an :class:`cmio.security.oidc.ExternalIssuer` whose tokens are accepted.
            clock: the time source (tests move it).
            patient_exists: whether a Patient id exists (the launch patient a user picks).
        """
        self.settings = settings
        self.kv = kv
        self.clock = clock
        hasher = PasswordHasher(
            time_cost=settings.password_time_cost, memory_cost=settings.password_memory_kib
        )
        self.revocations = Revocations(kv, clock=clock)
        self.codes = ExpiringMap(kv, "codes", 1, clock)
        """Authorization codes (by hash), 60 s."""
        self.launches = ExpiringMap(kv, "launches", 1, clock)
        """EHR launch contexts (by hash), 5 min."""
        self.refresh_tokens = ExpiringMap(kv, "refresh", 2, clock)
        """Refresh tokens (by hash) until they expire."""
        self.families = ExpiringMap(kv, "families", 1, clock)
        """Revoked refresh-token families."""
        self.throttle = ExpiringMap(kv, "throttle", 2, clock)
        """Failed logins per user name (remembered for a day)."""
        self.tokens = TokenService(keys, self.revocations, clock=clock)
        self.users = UserStore(kv, hasher)
        self.clients = ClientRegistry(kv, hasher)
        self.roles = role_table or RoleTable()
        self.oidc = oidc
        self.patient_exists: Callable[[str], bool] = patient_exists or (lambda _id: True)
        self.fetch_json: Callable[[str], dict[str, Any]] = http_fetch
        """How a backend client's ``jwks_url`` is fetched (tests replace it)."""
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self.audit: AuditHook | None = None
        """Audit hook (the audit trail wires itself here)."""

    @classmethod
    def open(cls, settings: AuthSettings, repository: Repository) -> AuthServer:
        """The server for a store: state in its ``job_state`` table, keys from the key file."""
        path = Path(settings.key_file) if settings.key_file else default_key_file(repository)
        keys = KeyRing.load_or_create(path, settings.signing_alg)
        oidc = None
        if settings.oidc_issuer:
            from cmio.security.oidc import ExternalIssuer

            oidc = ExternalIssuer(
                settings.oidc_issuer,
                audience=settings.oidc_audience,
                roles_claim=settings.oidc_roles_claim,
            )

        def patient_exists(patient_id: str) -> bool:
            with repository.read_transaction() as tx:
                return tx.current("Patient", patient_id) is not None

        return cls(
            settings,
            RepositoryKeyValue(repository),
            keys,
            oidc=oidc,
            patient_exists=patient_exists,
        )

    @property
    def keys(self) -> KeyRing:
        """The signing keys (those of :attr:`tokens`)."""
        return self.tokens.keys

    @keys.setter
    def keys(self, ring: KeyRing) -> None:
        """Use new keys (a rotation) for signing and verifying."""
        self.tokens.keys = ring

    def client_jwks(self, url: str) -> dict[str, Any]:
        """A backend client's published JWKS, cached for five minutes."""
        cached = self._jwks_cache.get(url)
        if cached is not None and self.clock() - cached[0] < 300:
            return cached[1]
        jwks = self.fetch_json(url)
        self._jwks_cache[url] = (self.clock(), jwks)
        return jwks

    # -- addresses ----------------------------------------------------------------------

    def issuer_for(self, fhir_base: str) -> str:
        """The issuer (this server's origin) for a FHIR base URL ``{origin}/fhir``."""
        if self.settings.issuer:
            return self.settings.issuer.rstrip("/")
        return fhir_base[: -len("/fhir")] if fhir_base.endswith("/fhir") else fhir_base

    def audience_for(self, fhir_base: str) -> str:
        """The ``aud`` of access tokens: the FHIR base URL."""
        if self.settings.issuer:
            return self.settings.issuer.rstrip("/") + "/fhir"
        return fhir_base

    # -- tokens ---------------------------------------------------------------------------

    def authenticate(self, token: str, fhir_base: str) -> AccessGrant:
        """Validate a bearer token (ours, or the external issuer's) into a grant.

        Raises:
            TokenError: the token is not valid (the message says why).
        """
        from cmio.security.tokens import unverified_header

        header = unverified_header(token)
        if self.oidc is not None and self.keys.find(str(header.get("kid"))) is None:
            audience = self.settings.oidc_audience or self.audience_for(fhir_base)
            grant: AccessGrant = self.oidc.grant(token, audience=audience, role_table=self.roles)
            return grant
        claims = self.tokens.validate(
            token, issuer=self.issuer_for(fhir_base), audience=self.audience_for(fhir_base)
        )
        return claims_to_grant(claims)

    def issue_for_user(
        self,
        user: User,
        fhir_base: str,
        *,
        client_id: str,
        scopes: frozenset[str] | None = None,
        patient: str | None = None,
        ttl: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """An access token for ``user`` (scopes: those given, else all of the user's roles)."""
        granted = scopes if scopes is not None else self.roles.scopes_for(user.roles)
        return self.tokens.issue(
            issuer=self.issuer_for(fhir_base),
            audience=self.audience_for(fhir_base),
            subject=user.name,
            scopes=granted,
            client_id=client_id,
            ttl=ttl or self.settings.access_token_ttl,
            roles=user.roles,
            patient=patient,
            fhir_user=user.fhir_user,
        )

    # -- web session ---------------------------------------------------------------------

    def check_password(
        self,
        name: str,
        password: str,
        remote_addr: str | None = None,
        client_id: str = WEB_CLIENT_ID,
    ) -> User | None:
        """The user when the password is right; audited; throttled per user name.

        After :data:`FREE_FAILURES` failures in a row a name is locked for a minute,
        doubling with each further failure up to 15 minutes (password guessing gets
        slow; a success resets). A locked name is refused without checking the password.
        """
        key = name.lower()
        state = self.throttle.get(key) or {}
        now = self.clock()
        if state.get("until", 0) > now:
            self.record("login", name, "failure", remote_addr, client_id, reason="locked")
            return None
        user = self.users.authenticate(name, password)
        if user is None:
            failures = int(state.get("failures", 0)) + 1
            until = 0.0
            if failures >= FREE_FAILURES:
                until = now + min(60 * 2 ** (failures - FREE_FAILURES), 900)
            record = {"failures": failures, "until": until, "exp": max(until, now + 86400)}
            self.throttle.put(key, record)
            self.record("login", name, "failure", remote_addr, client_id)
            return None
        if state:
            self.throttle.put(key, {"exp": now})
        self.record("login", name, "success", remote_addr, client_id)
        return user

    def login(
        self, name: str, password: str, fhir_base: str, remote_addr: str | None = None
    ) -> str | None:
        """Check a user's password; returns a session token (the web cookie) or None."""
        user = self.check_password(name, password, remote_addr)
        if user is None:
            return None
        token, _ = self.issue_for_user(
            user, fhir_base, client_id=WEB_CLIENT_ID, ttl=self.settings.session_ttl
        )
        return token

    def logout(self, token: str, fhir_base: str, remote_addr: str | None = None) -> None:
        """End a web session: its token is revoked."""
        try:
            claims = self.tokens.validate(
                token, issuer=self.issuer_for(fhir_base), audience=self.audience_for(fhir_base)
            )
        except TokenError:
            return
        self.revocations.revoke(str(claims["jti"]), float(claims["exp"]))
        self.record("logout", str(claims["sub"]), "success", remote_addr, claims.get("client_id"))

    def record(
        self,
        action: str,
        subject: str,
        outcome: str,
        remote_addr: str | None = None,
        client_id: str | None = None,
        **details: Any,
    ) -> None:
        """Tell the audit hook (if any). A failing hook fails the operation: a login the
        audit trail could not record does not happen."""
        if self.audit is None:
            return
        self.audit(
            action=action,
            subject=subject,
            outcome=outcome,
            remote_addr=remote_addr,
            client_id=client_id,
            **details,
        )
