"""What an authenticated caller may do: the grant every request carries.

The API layer turns a bearer token (or a web session) into an
:class:`AccessGrant` and puts it on the request context; authorization and
audit read it from there. See SMART App Launch v2 scopes and launch context
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["AccessGrant", "SubjectKind"]

SubjectKind = Literal["user", "client", "local"]
"""``user``: a person logged in; ``client``: a backend service (client_credentials);
``local``: authentication is switched off (``--no-auth``) or an in-process caller."""


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """The rights of one caller for one request.

    Attributes:
        subject: the user name or the client id.
        kind: who the subject is.
        scopes: the SMART scopes granted, as strings (``patient/Observation.rs``,
            ``user/*.cruds``, ``system/*.rs``, ``openid``, ``launch/patient`` ...).
        roles: the organization roles of a user (``clinician``, ``informaticist`` ...).
        patient: the launch patient (a Patient id) of a patient-context token.
        fhir_user: the FHIR resource of the user, e.g. ``Practitioner/123``.
        client_id: the OAuth client the token was issued to.
        token_id: the token's ``jti`` (recorded in audit).
        break_glass: the reason given when a user invoked break-the-glass access.
        authenticated: False when authentication is switched off.
    """

    subject: str
    kind: SubjectKind
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()
    patient: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    token_id: str | None = None
    break_glass: str | None = None
    authenticated: bool = True

    @classmethod
    def unrestricted(cls, subject: str = "local") -> AccessGrant:
        """Full access without authentication (``--no-auth`` on loopback, CLI jobs)."""
        return cls(
            subject=subject,
            kind="local",
            scopes=frozenset({"system/*.cruds"}),
            authenticated=False,
        )
