"""Clinic scheduling: visit times in the clinician's sessions, Slot and Appointment.

A scheduled visit takes a 20- or 40-minute slot in one of the clinician's weekly
clinic sessions (PractitionerRole.availableTime, Schedule); it is booked as a busy
Slot (https://hl7.org/fhir/R4/slot.html) and an Appointment
(https://hl7.org/fhir/R4/appointment.html), fulfilled or, for a missed earlier
booking, ``noshow``.
"""

from __future__ import annotations

from typing import Any

from cmio.synth.care import Event
from cmio.synth.context import PatientCtx
from cmio.synth.ids import MINUTES_PER_DAY
from cmio.synth.system import SESSION_HOURS, Clinician

__all__ = ["book_appointment", "schedule_visit"]

_APPT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"


def schedule_visit(ctx: PatientCtx, c: Clinician, day: int, length: int, stop: int) -> int:
    """Start minute of a visit in one of the clinician's sessions on or after ``day``."""
    rng = ctx.rng
    clock = ctx.run.clock
    for d in range(day, min(day + 10, stop + 1)):
        wd = clock.weekday(d)
        if wd > 4:
            continue
        halves = [h for h in (0, 1) if c.sessions[wd * 2 + h]]
        if halves:
            half = halves[rng.randrange(len(halves))]
            start, end = SESSION_HOURS[half]
            slots = (end - start) // 20 - length // 20 + 1
            return d * MINUTES_PER_DAY + start + 20 * rng.randrange(slots)
    return day * MINUTES_PER_DAY + rng.randint(8 * 60, 16 * 60)


def book_appointment(
    ctx: PatientCtx, c: Clinician, ev: Event, start: int, end: int, location: str, status: str
) -> str:
    """Append a Slot (when the clinician has a Schedule) and an Appointment; returns its id."""
    clock = ctx.run.clock
    slot_id, appt_id = ctx.ids(), ctx.ids()
    s, e = clock.instant(start), clock.instant(end)
    if any(c.sessions):
        ctx.out.append(
            {
                "resourceType": "Slot",
                "id": slot_id,
                "schedule": {"reference": f"Schedule/{c.schedule_id}"},
                "status": "busy",
                "start": s,
                "end": e,
            }
        )
    appt_type = {"chronic": "FOLLOWUP", "acute": "WALKIN"}.get(
        ev.kind, "CHECKUP" if ev.kind.startswith("wellness") else "ROUTINE"
    )
    appt: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appt_id,
        "status": status,
        "appointmentType": {"coding": [{"system": _APPT_TYPE, "code": appt_type}]},
        "start": s,
        "end": e,
        "minutesDuration": end - start,
        "created": clock.instant(start - ctx.rng.randint(1, 60) * MINUTES_PER_DAY),
        "participant": [
            {"actor": ctx.patient_ref, "status": "accepted"},
            {"actor": c.reference, "status": "accepted"},
            {"actor": {"reference": f"Location/{location}"}, "status": "accepted"},
        ],
    }
    if any(c.sessions):
        appt["slot"] = [{"reference": f"Slot/{slot_id}"}]
    ctx.out.append(appt)
    return appt_id
