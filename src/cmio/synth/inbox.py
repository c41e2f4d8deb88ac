"""The clinician's inbox: result review, refill requests and patient messages.

Result notifications and pharmacy refill requests are FHIR Tasks owned by the
clinician (https://hl7.org/fhir/R4/task.html); patient portal messages and replies
are Communications (https://hl7.org/fhir/R4/communication.html). Each piece of
inbox work is audited (BALP-shaped AuditEvent, activity class "In Basket" or
"Results Review") and waits for the clinician's next clinic session unless it slips
after hours.
"""

from __future__ import annotations

from cmio.synth.activity import audit, work_minute
from cmio.synth.context import PatientCtx
from cmio.synth.ids import MINUTES_PER_DAY
from cmio.synth.system import Clinician

__all__ = ["inbox_task", "message_thread", "refill_request"]

_APPROVE = {
    "system": "http://hl7.org/fhir/CodeSystem/task-code",
    "code": "approve",
    "display": "Activate/approve the focal resource",
}


def inbox_task(ctx: PatientCtx, c: Clinician, focus: str, ready: int, encounter_id: str) -> None:
    """A result-review inbox Task for the ordering clinician, and the review itself."""
    day = ready // MINUTES_PER_DAY + (1 if ready % MINUTES_PER_DAY > 17 * 60 else 0)
    review = work_minute(ctx, c, day, ctx.rng.randint(12 * 60, 13 * 60), 1.3, defer=True)
    review = max(review, ready + 5)
    clock = ctx.run.clock
    ctx.out.append(
        {
            "resourceType": "Task",
            "id": ctx.ids(),
            "status": "completed",
            "intent": "order",
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/CodeSystem/task-code",
                        "code": "fulfill",
                        "display": "Fulfill the focal request",
                    }
                ],
                "text": "Review result",
            },
            "description": "Review new result",
            "focus": {"reference": focus},
            "for": ctx.patient_ref,
            "encounter": {"reference": f"Encounter/{encounter_id}"},
            "authoredOn": clock.instant(ready),
            "lastModified": clock.instant(review + 2),
            "owner": c.reference,
        }
    )
    audit(
        ctx,
        c,
        "R",
        "results",
        review,
        ctx.rng.uniform(0.8, 3.0) * c.inbox_load**0.3,
        focus,
    )


def refill_request(ctx: PatientCtx, c: Clinician, day: int, rx_id: str) -> None:
    """A pharmacy refill request in the prescriber's inbox (Task) and its approval."""
    rng = ctx.rng
    clock = ctx.run.clock
    received = day * MINUTES_PER_DAY + rng.randint(6 * 60, 20 * 60)
    done_day = received // MINUTES_PER_DAY + (1 if received % MINUTES_PER_DAY > 16 * 60 else 0)
    done = max(
        received + 10, work_minute(ctx, c, done_day, rng.randint(12 * 60, 13 * 60), 1.2, defer=True)
    )
    ctx.out.append(
        {
            "resourceType": "Task",
            "id": ctx.ids(),
            "status": "completed",
            "intent": "order",
            "code": {"coding": [_APPROVE], "text": "Refill request"},
            "description": "Pharmacy refill request",
            "focus": {"reference": f"MedicationRequest/{rx_id}"},
            "for": ctx.patient_ref,
            "authoredOn": clock.instant(received),
            "lastModified": clock.instant(done + 1),
            "owner": c.reference,
        }
    )
    audit(ctx, c, "U", "inbox", done, rng.uniform(0.5, 1.5), f"MedicationRequest/{rx_id}")


def message_thread(ctx: PatientCtx, c: Clinician, day: int, topic: str) -> None:
    """A patient portal message to the clinician and the clinician's reply (Communication)."""
    rng = ctx.rng
    clock = ctx.run.clock
    sent = day * MINUTES_PER_DAY + rng.randint(7 * 60, 22 * 60)
    msg_id = ctx.ids()
    ctx.out.append(
        {
            "resourceType": "Communication",
            "id": msg_id,
            "status": "completed",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/communication-category",
                            "code": "notification",
                            "display": "Notification",
                        }
                    ]
                }
            ],
            "subject": ctx.patient_ref,
            "sent": clock.instant(sent),
            "recipient": [c.reference],
            "sender": ctx.patient_ref,
            "payload": [{"contentString": f"Question about my {topic}."}],
        }
    )
    reply_day = sent // MINUTES_PER_DAY + (1 if sent % MINUTES_PER_DAY > 16 * 60 else 0)
    at = max(
        sent + 10,
        work_minute(ctx, c, reply_day, rng.randint(11 * 60 + 30, 13 * 60), 1.5, defer=True),
    )
    reply_id = ctx.ids()
    ctx.out.append(
        {
            "resourceType": "Communication",
            "id": reply_id,
            "inResponseTo": [{"reference": f"Communication/{msg_id}"}],
            "status": "completed",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/communication-category",
                            "code": "instruction",
                            "display": "Instruction",
                        }
                    ]
                }
            ],
            "subject": ctx.patient_ref,
            "sent": clock.instant(at + 4),
            "recipient": [ctx.patient_ref],
            "sender": c.reference,
            "payload": [
                {
                    "contentString": f"Thank you for your message about your {topic}. Please continue the current plan."
                }
            ],
        }
    )
    audit(ctx, c, "R", "inbox", at, rng.uniform(0.5, 2.0), f"Communication/{msg_id}")
    audit(
        ctx,
        c,
        "C",
        "inbox",
        at + 1,
        rng.uniform(1.0, 4.0),
        f"Communication/{reply_id}",
    )
