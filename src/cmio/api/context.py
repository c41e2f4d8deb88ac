"""The per-request context every interaction runs with.

Authorization (SMART scopes) and audit read it without changing the router's
signatures. ``grant`` is None only for in-process callers (tests, CLI jobs)
that never went through authentication; the HTTP adapter always sets it when
authentication is on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cmio.security.grant import AccessGrant

__all__ = ["RequestContext"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, with what rights, under which correlation id."""

    principal: str | None = None
    scopes: frozenset[str] = frozenset()
    correlation_id: str = field(default_factory=lambda: os.urandom(12).hex())
    remote_addr: str | None = None
    grant: AccessGrant | None = None
    """What the caller may do (None: in-process caller, no authentication)."""
