"""Physician EHR activity: BALP-shaped AuditEvents, notes, team-entered orders, inbox.

Each clinician's work on a patient leaves an audit trail shaped like IHE Basic
Audit Log Patterns (https://profiles.ihe.net/ITI/BALP/): a RESTful ``read`` of the
chart (PatientRead), a ``create`` for every note (DocumentReference) and order,
result review with an inbox Task, and message replies (Communication, see :mod:`cmio.synth.inbox`). Orders
entered by the team nurse on the clinician's behalf get a Provenance with author
and enterer (https://hl7.org/fhir/R4/provenance.html). Work slips outside the
clinician's scheduled sessions according to their after-hours propensity (Arndt
et al., Ann Fam Med 2017; Sinsky et al., Ann Intern Med 2016). Each event is also
written as a row of the vendor-style audit log.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cmio.synth.codes import NOTE_TYPES
from cmio.synth.context import PatientCtx
from cmio.synth.ids import MINUTES_PER_DAY
from cmio.synth.system import BASE_URL, SESSION_HOURS, Clinician

__all__ = [
    "ACTIVITY_CLASSES",
    "BALP",
    "audit",
    "note",
    "order_provenance",
    "work_minute",
]

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
ACTIVITY_SYSTEM = f"{BASE_URL}/fhir/CodeSystem/ehr-activity"
ACTIVITY_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "chart-review": "Chart Review",
        "notes": "Notes",
        "orders": "Orders",
        "results": "Results Review",
        "inbox": "In Basket",
    }
)
"""EHR activity classes (codes of the local ``ehr-activity`` system) and their names."""
_SUBTYPES = {
    "R": (
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"},
        "PatientRead",
    ),
    "C": (
        {
            "system": "http://hl7.org/fhir/restful-interaction",
            "code": "create",
            "display": "create",
        },
        "PatientCreate",
    ),
    "U": (
        {
            "system": "http://hl7.org/fhir/restful-interaction",
            "code": "update",
            "display": "update",
        },
        "PatientUpdate",
    ),
}
_ACTION_WORD = {"R": "READ", "C": "CREATE", "U": "UPDATE"}
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_TREAT = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "TREAT",
                "display": "treatment",
            }
        ]
    }
]
_SOURCE_TYPE = [
    {
        "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
        "code": "4",
        "display": "Application Server",
    }
]
_PERSON = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
    "code": "1",
    "display": "Person",
}
_OBJECT = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
    "code": "2",
    "display": "System Object",
}
_ROLE_PATIENT = {
    "system": "http://terminology.hl7.org/CodeSystem/object-role",
    "code": "1",
    "display": "Patient",
}
_ROLE_RESOURCE = {
    "system": "http://terminology.hl7.org/CodeSystem/object-role",
    "code": "4",
    "display": "Domain Resource",
}
_NOTE_CATEGORY = [
    {
        "coding": [
            {
                "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "code": "clinical-note",
                "display": "Clinical Note",
            }
        ]
    }
]
_PROV = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_AUTHOR = {"coding": [{"system": _PROV, "code": "author", "display": "Author"}]}
_ENTERER = {"coding": [{"system": _PROV, "code": "enterer", "display": "Enterer"}]}
_BLOCKS = ("am", "pm", "eve")


def work_minute(
    ctx: PatientCtx, c: Clinician, day: int, in_hours: int, slip: float, *, defer: bool = False
) -> int:
    """When a task is done: at ``in_hours`` (a minute of ``day``) or, with probability
    ``slip`` x the clinician's after-hours propensity, in the evening or on the next
    morning before clinic. Deferred (inbox) work otherwise waits for the clinician's
    next clinic session day and is done at the end of a session."""
    rng = ctx.rng
    if rng.random() < min(0.95, slip * c.after_hours):
        if rng.random() < 0.75:
            return day * MINUTES_PER_DAY + rng.randint(19 * 60, 23 * 60)
        return (day + 1) * MINUTES_PER_DAY + rng.randint(5 * 60 + 30, 7 * 60)
    if defer and any(c.sessions):
        clock = ctx.run.clock
        for d in range(day, day + 8):
            wd = clock.weekday(d)
            if wd < 5 and (c.sessions[wd * 2] or c.sessions[wd * 2 + 1]):
                end = SESSION_HOURS[0 if c.sessions[wd * 2] else 1][1]
                return d * MINUTES_PER_DAY + end - rng.randint(5, 35)
    return day * MINUTES_PER_DAY + in_hours


def audit(
    ctx: PatientCtx,
    c: Clinician,
    action: str,
    activity: str,
    start: int,
    minutes: float,
    what: str | None,
) -> None:
    """Append a BALP-shaped AuditEvent and its audit-log row.

    Args:
        ctx: the patient context.
        c: the user.
        action: ``R``, ``C`` or ``U``.
        activity: an :data:`ACTIVITY_CLASSES` key.
        start: minute the work started.
        minutes: duration.
        what: ``Type/id`` of the resource read or written (None: the Patient).
    """
    clock = ctx.run.clock
    seconds = max(20, int(minutes * 60))
    end = start + math.ceil(seconds / 60)
    subtype, profile = _SUBTYPES[action]
    agents = ctx.run.agents[c.index]
    entity: list[dict[str, Any]] = [
        {"what": ctx.patient_ref, "type": _PERSON, "role": _ROLE_PATIENT}
    ]
    if what is not None:
        entity.append({"what": {"reference": what}, "type": _OBJECT, "role": _ROLE_RESOURCE})
    start_s, end_s = clock.instant(start), clock.instant(end)
    ctx.out.append(
        {
            "resourceType": "AuditEvent",
            "id": ctx.ids(),
            "meta": {"profile": [BALP + profile]},
            "type": _REST,
            "subtype": [
                subtype,
                {
                    "system": ACTIVITY_SYSTEM,
                    "code": activity,
                    "display": ACTIVITY_CLASSES[activity],
                },
            ],
            "action": action,
            "period": {"start": start_s, "end": end_s},
            "recorded": end_s,
            "outcome": "0",
            "purposeOfEvent": _TREAT,
            "agent": [agents[0], agents[1], agents[2] if action == "R" else agents[3]],
            "source": {
                "observer": {"reference": f"Device/{ctx.run.system.ehr_device_id}"},
                "type": _SOURCE_TYPE,
            },
            "entity": entity,
        }
    )
    day, minute = divmod(start, MINUTES_PER_DAY)
    block = _BLOCKS[0 if minute < 12 * 60 else 1 if minute < 18 * 60 else 2]
    ctx.audit_rows.append(
        (
            c.id,
            c.display,
            start_s,
            _ACTION_WORD[action],
            ctx.mrn,
            ACTIVITY_CLASSES[activity],
            f"S{c.index:04d}-{day:05d}-{block}",
            c.device,
            str(seconds),
        )
    )


def note(
    ctx: PatientCtx,
    c: Clinician,
    kind: str,
    encounter_id: str,
    period: dict[str, str],
    at: int,
    text: str,
    custodian: str,
) -> str:
    """Write a clinical note (DocumentReference, US Core clinical notes) and its audit trail.

    Returns:
        The DocumentReference id.
    """
    doc_id = ctx.ids()
    minutes = (
        c.note_minutes * ctx.rng.uniform(0.6, 1.6) * (2.0 if kind in ("hp", "discharge") else 1.0)
    )
    ctx.out.append(
        {
            "resourceType": "DocumentReference",
            "id": doc_id,
            "status": "current",
            "docStatus": "final",
            "type": {"coding": [NOTE_TYPES[kind].coding], "text": NOTE_TYPES[kind].display},
            "category": _NOTE_CATEGORY,
            "subject": ctx.patient_ref,
            "date": ctx.run.clock.instant(at + int(minutes)),
            "author": [c.reference],
            "custodian": {"reference": f"Organization/{custodian}"},
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(text.encode()).decode(),
                        "title": NOTE_TYPES[kind].display,
                    }
                }
            ],
            "context": {
                "encounter": [{"reference": f"Encounter/{encounter_id}"}],
                "period": period,
            },
        }
    )
    audit(ctx, c, "C", "notes", at, minutes, f"DocumentReference/{doc_id}")
    return doc_id


def order_provenance(
    ctx: PatientCtx, target: str, author: Clinician, enterer: Clinician, at: int
) -> None:
    """Provenance of a team-entered order: the clinician authors, the nurse enters."""
    when = ctx.run.clock.instant(at)
    ctx.out.append(
        {
            "resourceType": "Provenance",
            "id": ctx.ids(),
            "target": [{"reference": target}],
            "recorded": when,
            "agent": [
                {"type": _AUTHOR, "who": author.reference},
                {"type": _ENTERER, "who": enterer.reference, "onBehalfOf": author.reference},
            ],
        }
    )
