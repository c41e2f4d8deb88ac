"""The audit record of a CDS Hooks call (https://cds-hooks.hl7.org/2.0/#calling-a-cds-service).

``POST /cds-services/{id}`` does not pass through the FHIR router, so
:meth:`cmio.api.cds_hooks.CdsHooks.invoke` records it itself: a BALP Query-shaped
AuditEvent (``operation``, subtype ``cds-services/{id}``) naming the patient of the
hook's context, the caller (the user of a server token, or the trusted CDS client
by its JWT issuer), the outcome, and the hook instance as the correlation id. See
https://profiles.ihe.net/ITI/BALP/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cmio.security.audit import AuditFacts, outcome_code
from cmio.security.audit.chain import chain_rows
from cmio.security.audit.events import AuditSource, build_event
from cmio.security.grant import AccessGrant
from cmio.store.base import StoredResource, Transaction

__all__ = ["cds_facts", "feedback_recorder"]


def cds_facts(
    service_id: str,
    body: Any,
    grant: AccessGrant | None,
    base: str,
    status: int,
    answer: dict[str, Any],
    client: str | None = None,
    remote_addr: str | None = None,
) -> AuditFacts:
    """The facts of one call of ``service_id`` answered with ``status`` and ``answer``."""
    body = body if isinstance(body, dict) else {}
    context = body.get("context")
    patient = context.get("patientId") if isinstance(context, dict) else None
    instance = body.get("hookInstance")
    error = answer.get("error") if status >= 400 else None
    source = None
    if grant is None and client:
        source = AuditSource("urn:cmio:cds-client", client, f"CDS client {client}")
    return AuditFacts(
        "operation",
        outcome=outcome_code(status),
        outcome_desc=str(error) if error else None,
        grant=grant,
        remote_addr=remote_addr,
        correlation_id=instance if isinstance(instance, str) else None,
        server=base,
        patient=patient if isinstance(patient, str) and patient else None,
        operation=f"cds-services/{service_id}",
        status=status,
        source=source,
    )


def feedback_recorder(
    service_id: str,
    grant: AccessGrant | None,
    base: str,
    client: str | None = None,
    remote_addr: str | None = None,
) -> Callable[[Transaction, list[StoredResource]], None]:
    """Records the feedback ``POST /cds-services/{id}/feedback`` stores, in its transaction.

    One BALP Create-shaped AuditEvent per stored feedback resource, naming the caller
    (the user of a server token, or the trusted CDS client by its JWT issuer); see
    https://cds-hooks.hl7.org/2.0/#feedback and https://profiles.ihe.net/ITI/BALP/.
    """
    source = None
    if grant is None and client:
        source = AuditSource("urn:cmio:cds-client", client, f"CDS client {client}")

    def record(tx: Transaction, written: list[StoredResource]) -> None:
        events = [
            build_event(
                AuditFacts(
                    "create",
                    grant=grant,
                    remote_addr=remote_addr,
                    server=base,
                    resource_type=stored.type,
                    resource_id=stored.id,
                    version=stored.version,
                    operation=f"cds-services/{service_id}/feedback",
                    status=201,
                    source=source,
                )
            )
            for stored in written
        ]
        if events:
            tx.audit_append(chain_rows(tx.audit_head(), events))

    return record
