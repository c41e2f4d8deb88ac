"""The built-in server's users: argon2id password hashes, roles, fhirUser, disabled flag.

Users are kept in the store (the ``job_state`` key-value table), so ``cmio user add``
and every server process share them. Passwords are hashed with argon2id
(RFC 9106, https://www.rfc-editor.org/rfc/rfc9106.html) via argon2-cffi.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cmio.security.kv import KeyValue
from cmio.security.roles import ROLES

__all__ = ["MIN_PASSWORD_LENGTH", "User", "UserError", "UserStore"]

MIN_PASSWORD_LENGTH = 10
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_FHIR_USER_RE = re.compile(r"(Practitioner|Patient|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}")
_DOC = "users"


class UserError(ValueError):
    """A user operation was refused (the message says why)."""


@dataclass(frozen=True, slots=True)
class User:
    """One user account."""

    name: str
    roles: tuple[str, ...]
    fhir_user: str | None
    disabled: bool
    password_hash: str

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "roles": list(self.roles),
            "fhirUser": self.fhir_user,
            "disabled": self.disabled,
            "hash": self.password_hash,
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> User:
        """Read the stored form."""
        return cls(
            name=name,
            roles=tuple(data.get("roles", ())),
            fhir_user=data.get("fhirUser"),
            disabled=bool(data.get("disabled", False)),
            password_hash=str(data["hash"]),
        )


class UserStore:
    """Create, list, disable and authenticate users."""

    def __init__(
        self,
        kv: KeyValue,
        hasher: PasswordHasher | None = None,
        roles: Iterable[str] = ROLES,
    ) -> None:
        """Users in ``kv``, hashed by ``hasher`` (argon2id, RFC 9106 low-memory profile)."""
        self.kv = kv
        self.hasher = hasher or PasswordHasher()
        self.roles = frozenset(roles)
        self._dummy: str | None = None

    def _all(self) -> dict[str, Any]:
        return self.kv.get(_DOC) or {}

    def get(self, name: str) -> User | None:
        """The user ``name``, or None."""
        data = self._all().get(name)
        return None if data is None else User.from_json(name, data)

    def list(self) -> list[User]:
        """All users, by name."""
        return [User.from_json(n, d) for n, d in sorted(self._all().items())]

    def add(
        self, name: str, password: str, roles: Iterable[str], fhir_user: str | None = None
    ) -> User:
        """Create a user.

        Raises:
            UserError: the name is taken or invalid, a role is unknown, the password is
                shorter than :data:`MIN_PASSWORD_LENGTH` or fhir_user is not a reference.
        """
        if not _NAME_RE.fullmatch(name):
            raise UserError(f"user name {name!r} is not valid (letters, digits, . _ @ -)")
        role_list = tuple(dict.fromkeys(roles))
        if not role_list:
            raise UserError("a user needs at least one role")
        unknown = [r for r in role_list if r not in self.roles]
        if unknown:
            raise UserError(f"unknown role {unknown[0]!r}; roles: {', '.join(sorted(self.roles))}")
        if fhir_user is not None and not _FHIR_USER_RE.fullmatch(fhir_user):
            raise UserError(f"fhirUser {fhir_user!r} must be like Practitioner/ID")
        user = User(name, role_list, fhir_user, False, self._hash(password))

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {}
            if name in doc:
                raise UserError(f"user {name!r} already exists")
            doc[name] = user.to_json()
            return doc

        self.kv.update(_DOC, change)
        return user

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        return self.hasher.hash(password)

    def _modify(self, name: str, **fields: Any) -> None:
        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            doc = doc or {}
            if name not in doc:
                raise UserError(f"no user {name!r}")
            doc[name].update(fields)
            return doc

        self.kv.update(_DOC, change)

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or enable again) a user: a disabled user cannot log in."""
        self._modify(name, disabled=disabled)

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password."""
        self._modify(name, hash=self._hash(password))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is right and the account enabled, else None.

        An unknown name costs one hash verification too, so timing does not tell
        which user names exist.
        """
        user = self.get(name)
        if user is None and self._dummy is None:
            self._dummy = self.hasher.hash(os.urandom(16).hex())
        try:
            self.hasher.verify(user.password_hash if user else str(self._dummy), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled:
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            self._modify(name, hash=self.hasher.hash(password))
        return user
