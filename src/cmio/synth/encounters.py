"""One encounter and everything it produces.

Encounter (https://hl7.org/fhir/R4/encounter.html) with class, type, period,
participant, location and serviceProvider; Slot and Appointment for scheduled
clinic visits; vital signs (US Core vital signs, UCUM units), PHQ-9, lab orders
(ServiceRequest), results (Observation, DiagnosticReport), Procedures,
Immunizations (CVX), MedicationRequests (RxNorm), Conditions diagnosed here,
clinical notes and the clinician's audit trail (:mod:`cmio.synth.documentation`),
then the Claim and EOB.
"""

from __future__ import annotations

from typing import Any

from cmio.synth.activity import audit, work_minute
from cmio.synth.care import Event
from cmio.synth.clinical_codes import (
    DIAGNOSES,
    DISCHARGE_DAY,
    DRUGS,
    IMMUNIZATION_ADMIN,
    INPATIENT_DAY,
    PANELS,
    PROCEDURES,
    VACCINES,
    VISITS,
)
from cmio.synth.codes import CPT, LAB_PROCEDURE, Code
from cmio.synth.context import PatientCtx
from cmio.synth.cost import bill
from cmio.synth.documentation import encounter_notes, mammogram_report, order_audit
from cmio.synth.ids import MINUTES_PER_DAY
from cmio.synth.inbox import inbox_task
from cmio.synth.observations import PatientState, condition, emit_labs, emit_phq9, emit_vitals
from cmio.synth.scheduling import book_appointment, schedule_visit
from cmio.synth.system import Clinician

__all__ = ["emit_encounter"]

_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASS = {
    "AMB": {"system": _ACT, "code": "AMB", "display": "ambulatory"},
    "EMER": {"system": _ACT, "code": "EMER", "display": "emergency"},
    "IMP": {"system": _ACT, "code": "IMP", "display": "inpatient encounter"},
    "VR": {"system": _ACT, "code": "VR", "display": "virtual"},
}
_PART = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ATND = [{"coding": [{"system": _PART, "code": "ATND", "display": "attender"}]}]
_PPRF = [{"coding": [{"system": _PART, "code": "PPRF", "display": "primary performer"}]}]
_APPT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"
_LAB_CATEGORY = [{"coding": [LAB_PROCEDURE.coding]}]
_RX_CAT = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
_COURSE = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"
_PHQ9_CPT = Code(
    CPT,
    "96127",
    "Brief emotional/behavioral assessment, with scoring and documentation, per standardized instrument",
)
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
_ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"
_SCHEDULED = frozenset({"chronic", "specialist", "prenatal", "procedure", "acute"})


def _clinician_for(ctx: PatientCtx, st: PatientState, ev: Event) -> Clinician:
    pcp = st.person.pcp
    if ev.dept == pcp.dept or (ev.dept == "primary" and pcp.dept == "internal"):
        return pcp
    return ctx.run.system.pick(ev.dept, ctx.rng)


def emit_encounter(
    ctx: PatientCtx, st: PatientState, ev: Event, start_at: int | None = None
) -> int:
    """Generate the encounter ``ev`` for the patient in ``st`` into ``ctx.out``.

    An admission through the emergency department first generates the ED visit;
    ``start_at`` (a minute) fixes the start. Returns the minute the encounter ended.
    """
    rng = ctx.rng
    run = ctx.run
    clock = run.clock
    system = run.system
    visit = VISITS[ev.kind]
    c = _clinician_for(ctx, st, ev)
    dept_org, dept_loc = system.dept_ids(c)
    enc_id = ctx.ids()
    enc_ref = {"reference": f"Encounter/{enc_id}"}
    cls = "AMB"
    appointment_id: str | None = None
    if ev.kind == "emergency":
        cls = "EMER"
        start = ev.day * MINUTES_PER_DAY + int(rng.triangular(0, 1200, 17 * 60))
        end = start + rng.randint(120, 420)
    elif ev.kind == "inpatient":
        cls = "IMP"
        start = ev.day * MINUTES_PER_DAY + rng.randint(0, 1439)
        if ev.via_ed:
            ed = Event(ev.day, "emergency", "emergency", list(ev.reasons), labs=["bmp"])
            start = emit_encounter(ctx, st, ed) + rng.randint(20, 90)
        end = (ev.day + ev.los) * MINUTES_PER_DAY + rng.randint(10 * 60, 15 * 60)
        if ev.dies:
            end = (ev.day + ev.los) * MINUTES_PER_DAY + rng.randint(0, 1439)
        end = max(end, start + 240)
    elif ev.kind == "virtual":
        cls = "VR"
        start = ev.day * MINUTES_PER_DAY + rng.randint(8 * 60, 17 * 60)
        end = start + rng.randint(8, 20)
    else:
        length = 40 if ev.kind.startswith("wellness") or ev.kind == "specialist" else 20
        start = schedule_visit(ctx, c, ev.day, length, st.stop)
        end = start + length
        if rng.random() < 0.07 and start > 20 * MINUTES_PER_DAY:
            # a missed earlier booking (MGMA: ~ 5-7% no-shows in primary care)
            earlier = start - rng.randint(7, 20) * MINUTES_PER_DAY
            book_appointment(ctx, c, ev, earlier, earlier + length, dept_loc, "noshow")
        appointment_id = book_appointment(ctx, c, ev, start, end, dept_loc, "fulfilled")
    day = start // MINUTES_PER_DAY
    period = {"start": clock.instant(start), "end": clock.instant(end)}
    reasons = [DIAGNOSES[k].concept for k in ev.reasons]
    # conditions diagnosed at this encounter (problem list) and acute encounter diagnoses
    diagnosis: list[dict[str, Any]] = []
    for key in ev.new_dx:
        if key not in st.condition_ids:
            cid = condition(ctx, st, key, start, enc_id, c, problem=True)
            diagnosis.append(
                {"condition": {"reference": f"Condition/{cid}"}, "rank": len(diagnosis) + 1}
            )
    for key in ev.reasons:  # known problems addressed at this visit
        known = st.condition_ids.get(key)
        if known and key not in ev.new_dx:
            diagnosis.append(
                {"condition": {"reference": f"Condition/{known}"}, "rank": len(diagnosis) + 1}
            )
    if (
        ev.kind in ("acute", "emergency", "inpatient", "virtual")
        and ev.reasons[0] not in st.condition_ids
    ):
        cid = condition(ctx, st, ev.reasons[0], start, enc_id, c, problem=False)
        diagnosis.append(
            {"condition": {"reference": f"Condition/{cid}"}, "rank": len(diagnosis) + 1}
        )
    for key in ev.resolves:
        resolved = st.conditions.pop(key, None)
        st.condition_ids.pop(key, None)
        if resolved is not None:
            resolved["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": "resolved"}]}
            resolved["abatementDateTime"] = clock.instant(end)
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": "finished",
        "class": _CLASS[cls],
        "type": [visit.concept],
        "subject": ctx.patient_ref,
        "participant": [
            {"type": _ATND if cls == "IMP" else _PPRF, "period": period, "individual": c.reference}
        ],
        "period": period,
        "reasonCode": reasons,
        "location": [{"location": {"reference": f"Location/{dept_loc}"}, "status": "completed"}],
        "serviceProvider": {"reference": f"Organization/{dept_org}"},
    }
    if appointment_id:
        encounter["appointment"] = [{"reference": f"Appointment/{appointment_id}"}]
    if diagnosis:
        encounter["diagnosis"] = diagnosis
    if cls == "IMP":
        encounter["hospitalization"] = {
            "admitSource": {
                "coding": [
                    {"system": _ADMIT_SOURCE, "code": "emd" if ev.dept != "obstetrics" else "outp"}
                ]
            },
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": _DISPOSITION,
                        "code": "exp" if ev.dies else "home",
                        "display": "Expired" if ev.dies else "Home",
                    }
                ]
            },
        }
    ctx.out.append(encounter)
    # chart review before the visit (the evening before for after-hours users)
    if cls in ("AMB", "VR"):
        before = work_minute(ctx, c, day - 1, 0, 0.8)
        review = (
            before if before >= (day - 1) * MINUTES_PER_DAY + 60 else start - rng.randint(5, 25)
        )
    else:
        review = start + rng.randint(5, 40)
    audit(ctx, c, "R", "chart-review", review, rng.uniform(1.5, 6.0), None)
    lines: list[tuple[Code, float]] = [(visit.cpt, visit.charge)]
    if cls != "VR":
        emit_vitals(ctx, st, ev, enc_ref, start + 5)
    if ev.phq9:
        emit_phq9(ctx, st, enc_ref, start + 8)
        lines.append((_PHQ9_CPT, 25.0))
    team = system.clinicians[c.nurse]
    for key in ev.labs:
        panel = PANELS[key]
        sr_id = ctx.ids()
        ordered = start + rng.randint(10, max(11, end - start - 2))
        ctx.out.append(
            {
                "resourceType": "ServiceRequest",
                "id": sr_id,
                "status": "completed",
                "intent": "order",
                "category": _LAB_CATEGORY,
                "code": {
                    "coding": [panel.loinc.coding, panel.cpt.coding],
                    "text": panel.loinc.display,
                },
                "subject": ctx.patient_ref,
                "encounter": enc_ref,
                "authoredOn": clock.instant(ordered),
                "requester": c.reference,
            }
        )
        order_audit(ctx, c, team, f"ServiceRequest/{sr_id}", ordered)
        ready = ordered + (rng.randint(60, 240) if cls != "AMB" else rng.randint(16 * 60, 26 * 60))
        report = emit_labs(ctx, st, key, enc_ref, sr_id, ordered + 15, ready)
        inbox_task(ctx, c, f"DiagnosticReport/{report}", ready, enc_id)
        lines.append((panel.cpt, panel.charge))
    for key in ev.procs:
        proc = PROCEDURES[key]
        performed = start + rng.randint(5, 30)
        ctx.out.append(
            {
                "resourceType": "Procedure",
                "id": ctx.ids(),
                "status": "completed",
                "code": proc.concept,
                "subject": ctx.patient_ref,
                "encounter": enc_ref,
                "performedPeriod": {
                    "start": clock.instant(performed),
                    "end": clock.instant(performed + 20),
                },
                "performer": [{"actor": c.reference}],
                "location": {"reference": f"Location/{dept_loc}"},
                "reasonCode": reasons[:1],
            }
        )
        lines.append((proc.billing, proc.charge))
        if key == "mammography":
            mammogram_report(ctx, st, enc_id, dept_org, performed)
    for key in ev.vaccines:
        vaccine = VACCINES[key]
        ctx.out.append(
            {
                "resourceType": "Immunization",
                "id": ctx.ids(),
                "status": "completed",
                "vaccineCode": vaccine.concept,
                "patient": ctx.patient_ref,
                "encounter": enc_ref,
                "occurrenceDateTime": clock.instant(start + 15),
                "primarySource": True,
                "location": {"reference": f"Location/{dept_loc}"},
                "lotNumber": f"{key.upper()[:3]}{rng.randrange(10**5):05d}",
                "performer": [{"actor": team.reference}],
            }
        )
        lines.append((vaccine.cpt, vaccine.charge))
        lines.append((IMMUNIZATION_ADMIN, 30.0))
    for key in ev.meds:
        drug = DRUGS[key]
        rx_id = ctx.ids()
        ordered = start + rng.randint(10, max(11, end - start))
        ongoing = drug.chronic and (st.stop - day) < 365
        ctx.out.append(
            {
                "resourceType": "MedicationRequest",
                "id": rx_id,
                "status": "active" if ongoing else "completed",
                "intent": "order",
                "category": [
                    {
                        "coding": [
                            {
                                "system": _RX_CAT,
                                "code": "inpatient" if cls == "IMP" else "outpatient",
                            }
                        ]
                    }
                ],
                "medicationCodeableConcept": drug.concept,
                "subject": ctx.patient_ref,
                "encounter": enc_ref,
                "authoredOn": clock.instant(ordered),
                "requester": c.reference,
                "reasonCode": reasons[:1],
                "courseOfTherapyType": {
                    "coding": [
                        {"system": _COURSE, "code": "continuous" if drug.chronic else "acute"}
                    ]
                },
                "dosageInstruction": [{"text": drug.sig}],
                "dispenseRequest": {"numberOfRepeatsAllowed": 5 if drug.chronic else 0},
            }
        )
        order_audit(ctx, c, team, f"MedicationRequest/{rx_id}", ordered)
        st.started_meds.add(key)
        if drug.chronic:
            st.prescriptions[key] = (rx_id, day, c.index)
        lines.append((drug.rxnorm, drug.cost))
    encounter_notes(ctx, st, ev, c, enc_id, period, start, end, dept_org)
    if cls == "IMP":
        lines.append((INPATIENT_DAY, 450.0 * max(1, ev.los)))
        lines.append((DISCHARGE_DAY, 220.0))
    dx = [DIAGNOSES[k].billing for k in ev.reasons]
    bill(
        ctx,
        enc_id,
        period,
        cls in ("EMER", "IMP"),
        lines,
        dx,
        dept_org,
        st.person.payer,
        st.person.coverage_id,
        system.org_id,
    )
    return end
