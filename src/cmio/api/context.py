"""The per-request context every interaction runs with.

Authorization (SMART scopes) and audit plug into it later without changing
the router's signatures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["RequestContext"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, with what rights, under which correlation id."""

    principal: str | None = None
    scopes: frozenset[str] = frozenset()
    correlation_id: str = field(default_factory=lambda: os.urandom(12).hex())
    remote_addr: str | None = None
