"""What an audited interaction was: the facts an AuditEvent is built from.

:class:`AuditFacts` holds who, from where, what, on which patient and with which
outcome, as the API layer saw it; :func:`outcome_code` maps an HTTP status to the
AuditEvent outcome (http://hl7.org/fhir/R4/valueset-audit-event-outcome.html).
:func:`cmio.security.audit.events.build_event` turns the facts into a BALP-shaped
AuditEvent (https://profiles.ihe.net/ITI/BALP/content.html).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmio.security.audit.source import AuditSource
from cmio.security.grant import AccessGrant

__all__ = ["AuditFacts", "outcome_code"]


@dataclass(slots=True)
class AuditFacts:
    """What happened, as the API layer saw it (treated as immutable: change it with
    :meth:`evolve`; not frozen, because a frozen dataclass costs several times more to
    build, and one is built for every request).

    Attributes:
        interaction: a key of :data:`cmio.security.audit.events.INTERACTION_ACTIONS`.
        outcome: ``0`` success, ``4`` minor failure (4xx), ``8`` serious failure (5xx),
            ``12`` major failure; see :func:`outcome_code`.
        outcome_desc: why it failed (the OperationOutcome's first diagnostics).
        grant: the caller's rights (None: an in-process caller).
        remote_addr: the client's network address.
        correlation_id: the request id (``x-request-id``).
        server: the FHIR base URL (the observer's network address).
        resource_type: the resource type addressed, if any.
        resource_id: the logical id addressed, if any.
        version: the version read or written, if known.
        patient: the id of the Patient whose compartment the data belongs to.
        query: the search query string (``a=b&c=d``) of a search.
        operation: the ``$name`` of an operation.
        status: the HTTP status answered.
        recorded: the instant (defaults to now).
        id: the AuditEvent id (empty: a fresh random one).
        source: the system acting on its own account (then the user and client agents
            give way to it).
        resources: more resources written (``Type/id/_history/v``), an entity each: the
            record of a batch (bulk import).
        patients: the patients of ``resources`` (an entity each).
    """

    interaction: str
    outcome: str = "0"
    outcome_desc: str | None = None
    grant: AccessGrant | None = None
    remote_addr: str | None = None
    correlation_id: str | None = None
    server: str = "urn:cmio"
    resource_type: str | None = None
    resource_id: str | None = None
    version: int | None = None
    patient: str | None = None
    query: str | None = None
    operation: str | None = None
    status: int | None = None
    recorded: str = field(default_factory=lambda: _now())
    id: str = ""
    source: AuditSource | None = None
    resources: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()

    def evolve(self, **changes: Any) -> AuditFacts:
        """A copy with ``changes`` applied, as :func:`dataclasses.replace` makes (without
        inspecting the fields on every call).

        Raises:
            TypeError: a name in ``changes`` is not a field.
        """
        new = object.__new__(AuditFacts)
        for name in AuditFacts.__slots__:
            setattr(new, name, changes.pop(name) if name in changes else getattr(self, name))
        if changes:
            raise TypeError(f"AuditFacts has no field {next(iter(changes))!r}")
        return new


def _now() -> str:
    """Now as an ``instant`` with milliseconds (``2026-01-02T03:04:05.678Z``), truncated as
    :meth:`datetime.isoformat` does; the seconds part is formatted once per second."""
    now = time.time()
    second = int(now)
    return f"{_second(second)}.{int((now - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def outcome_code(status: int) -> str:
    """The AuditEvent outcome of an HTTP status.

    See http://hl7.org/fhir/R4/valueset-audit-event-outcome.html.

    Args:
        status: the HTTP status answered.

    Returns:
        ``0`` (success: below 400), ``4`` (minor failure: 4xx) or ``8`` (serious
        failure: 5xx and above).
    """
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"
