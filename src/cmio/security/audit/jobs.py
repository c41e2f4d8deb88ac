"""Audit records of system jobs that write outside the REST API: bulk import, reindex.

A job has no HTTP request to classify, so it names itself (:class:`AuditSource`, a
Device-like requesting agent) and appends its records inside its own write
transactions: the record of an import batch commits with the batch (one AuditEvent
per action, with an entity per resource written and per patient touched, as BALP
allows for a bulk interaction: https://profiles.ihe.net/ITI/BALP/content.html#3571),
and a reindex job records one event when it completes. Both share the hash chain of
the API's records (:mod:`cmio.security.audit.chain`).
"""

from __future__ import annotations

import getpass
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from cmio.security.audit.chain import canonical, chain_rows
from cmio.security.audit.events import AuditFacts, AuditSource, build_event, event_entities
from cmio.security.audit.template import Canonical
from cmio.store.base import StoredResource, Transaction

__all__ = ["JobAudit", "patient_of"]

_PATIENT_KEYS = ("subject", "patient", "beneficiary")


def patient_of(resource: Any) -> str | None:
    """The Patient whose compartment ``resource`` is in (its id, or its subject/patient)."""
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for key in _PATIENT_KEYS:
        ref = resource.get(key)
        if isinstance(ref, list):
            ref = ref[0] if ref else None
        if isinstance(ref, dict):
            text = ref.get("reference")
            if isinstance(text, str) and text.startswith("Patient/"):
                return text[len("Patient/") :].split("/", 1)[0]
    return None


class JobAudit:
    """Appends the records of one job's writes inside the job's transactions.

    Args:
        source: who the job is (its ``message`` is the job id).
        server: the server or store the job writes to (the observer).
    """

    def __init__(self, source: AuditSource, server: str = "urn:cmio") -> None:
        self.source = source
        self.server = server
        self._prefix, self._counter = os.urandom(8).hex(), itertools.count(1)
        self.records = 0
        """Records appended so far."""

    @classmethod
    def for_command(cls, name: str, server: str = "urn:cmio") -> JobAudit:
        """The audit of a CLI job (``import``, ``reindex``) run by this OS user."""
        user = _os_user()
        job = os.urandom(8).hex()
        source = AuditSource("urn:cmio:job", name, f"cmio {name} run by {user}", job, "job")
        return cls(source, server)

    def _id(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"

    def _append(self, tx: Transaction, events: Sequence[Mapping[str, Any] | Canonical]) -> None:
        if events:
            tx.audit_append(chain_rows(tx.audit_head(), events))
            self.records += len(events)

    def batch(
        self,
        tx: Transaction,
        written: Sequence[StoredResource],
        resources: Sequence[Mapping[str, Any] | None] = (),
    ) -> None:
        """Record the versions ``written`` in ``tx`` (one event per create/update action).

        ``resources`` (aligned with ``written`` when given) name each one's patient.
        """
        groups: dict[str, tuple[list[str], dict[str, None]]] = {}
        for n, stored in enumerate(written):
            interaction = "create" if stored.version == 1 else "update"
            if stored.deleted:
                interaction = "delete"
            refs, patients = groups.setdefault(interaction, ([], {}))
            refs.append(f"{stored.type}/{stored.id}/_history/{stored.version}")
            patient = patient_of(resources[n]) if n < len(resources) else None
            if patient is not None:
                patients[patient] = None
        events = [
            _batch_record(
                AuditFacts(
                    interaction,
                    server=self.server,
                    operation=self.source.value,
                    source=self.source,
                    id=self._id(),
                ),
                tuple(patients),
                tuple(refs),
            )
            for interaction, (refs, patients) in groups.items()
        ]
        self._append(tx, events)

    def reindexed(self, tx: Transaction, state: Any) -> None:
        """Record a completed reindex job (``state``: its ``ReindexState``), in ``tx``."""
        params = ", ".join(state.parameters) or "none"
        self.job(tx, description=f"reindexed {state.done} resources; SearchParameters: {params}")

    def job(self, tx: Transaction, outcome: str = "0", description: str | None = None) -> None:
        """Record the job itself (one event: a reindex), in ``tx``."""
        facts = AuditFacts(
            "operation",
            outcome=outcome,
            outcome_desc=description,
            server=self.server,
            operation=self.source.value,
            source=self.source,
            id=self._id(),
        )
        self._append(tx, [build_event(facts)])


def _entity_parts(kind: str) -> tuple[bytes, bytes]:
    """The canonical bytes of a patient (``P``) or resource (``R``) entity around its
    reference, taken from the entity :func:`event_entities` builds."""
    mark = "\x00"
    facts = (
        AuditFacts("create", patients=(mark,))
        if kind == "P"
        else AuditFacts("create", resources=(mark,))
    )
    data = orjson.dumps(event_entities(facts)[0], option=orjson.OPT_SORT_KEYS)
    before, after = data.split(orjson.dumps(mark)[1:-1])
    return before, after


def _batch_record(
    facts: AuditFacts, patients: tuple[str, ...], refs: tuple[str, ...]
) -> Mapping[str, Any] | Canonical:
    """The canonical bytes of ``facts`` with entities for ``patients`` and ``refs``
    (exactly ``canonical(build_event(facts with them))``, serialized without building
    thousands of entity dicts: an import batch names every version it wrote)."""
    event = build_event(facts)
    data = canonical(event)
    head = b'"entity":['
    at = data.find(head)
    if at < 0 or facts.patient or facts.patients or facts.resources:
        return build_event(facts.evolve(patients=patients, resources=refs))
    at += len(head)
    p_before, p_after = _entity_parts("P")
    r_before, r_after = _entity_parts("R")
    parts = [p_before + orjson.dumps(p)[1:-1] + p_after for p in patients]
    parts += [r_before + orjson.dumps(r)[1:-1] + r_after for r in refs]
    if not parts:
        return Canonical(data, facts.recorded)
    return Canonical(data[:at] + b",".join(parts) + b"," + data[at:], facts.recorded)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return f"uid {os.getuid()}"
