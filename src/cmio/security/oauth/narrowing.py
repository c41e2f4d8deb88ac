"""Which requested scopes a user or client may get (SMART App Launch v2).

A requested clinical scope is granted when one allowed scope covers it: the same
context (or ``user`` covering ``patient``, a patient-context token being a subset of
what the user may see), the same or ``*`` resource type, at least its permissions,
and no narrowing query the request would drop
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
"""

from __future__ import annotations

from collections.abc import Iterable

from cmio.security.scopes import Scope, ScopeError, parse_scope

__all__ = ["USER_LAUNCH_SCOPES", "narrow_scopes"]

USER_LAUNCH_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "offline_access",
        "online_access",
    }
)
"""Non-clinical scopes an interactive (authorization-code) client may request."""


def _covers(allowed: Scope, wanted: Scope) -> bool:
    if allowed.context != wanted.context and not (
        allowed.context == "user" and wanted.context == "patient"
    ):
        return False
    if allowed.resource_type not in ("*", wanted.resource_type):
        return False
    if not wanted.permissions <= allowed.permissions:
        return False
    return not allowed.query or allowed.query == wanted.query


def _parsed(texts: Iterable[str]) -> list[Scope]:
    out = []
    for text in texts:
        try:
            out.append(parse_scope(text))
        except ScopeError:
            continue
    return out


def narrow_scopes(
    requested: Iterable[str], allowed: Iterable[str], *, interactive: bool
) -> frozenset[str]:
    """The requested scopes that ``allowed`` covers (unknown or malformed ones dropped).

    Args:
        requested: the scopes the client asked for.
        allowed: the scopes of the user's roles (or the backend client's registration).
        interactive: True for a user's authorization-code grant (launch and OpenID
            scopes allowed; ``system/`` never), False for a backend service.
    """
    allowed_list = list(allowed)
    allowed_scopes = _parsed(allowed_list)
    granted: set[str] = set()
    for text in requested:
        if interactive and text in USER_LAUNCH_SCOPES:
            granted.add(text)
            continue
        try:
            wanted = parse_scope(text)
        except ScopeError:
            continue
        if interactive == (wanted.context == "system"):
            continue
        if any(_covers(a, wanted) for a in allowed_scopes):
            granted.add(text)
    return frozenset(granted)
