"""Generate one patient: demographics, history, care timeline, EHR activity and cost.

Each patient has its own ``random.Random`` seeded from the run seed and the
patient's number, and its own id sequence, so any range of patients can be
generated in any process and the output is the same.
"""

from __future__ import annotations

import random

from cmio.synth.care import CHRONIC, plan_care
from cmio.synth.clinical_codes import PROCEDURES, SMOKING_VALUES, VACCINES
from cmio.synth.codes import ALLERGIES
from cmio.synth.context import PatientCtx, Run
from cmio.synth.demographics import make_person, patient_resources
from cmio.synth.disease import assign_profile
from cmio.synth.encounters import emit_encounter
from cmio.synth.ids import MINUTES_PER_DAY, IdMaker
from cmio.synth.inbox import message_thread, refill_request
from cmio.synth.observations import PatientState, condition

__all__ = ["generate_patient"]

_ALLERGY_CLINICAL = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active",
        }
    ]
}
_ALLERGY_VERIFIED = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed",
        }
    ]
}
_TOPICS = {"t2dm": "blood sugar", "htn": "blood pressure", "hld": "cholesterol medicine", "depression": "mood",
           "asthma": "inhaler", "copd": "breathing", "hypothyroid": "thyroid medicine"}  # fmt: skip


def generate_patient(run: Run, index: int) -> PatientCtx:
    """Generate patient number ``index`` of the run.

    Returns:
        The patient context, whose ``out`` holds the resources (Patient first) and
        ``audit_rows`` the vendor audit-log rows.
    """
    rng = random.Random(f"cmio-synth/{run.seed}/patient/{index}")
    ids = IdMaker(f"cmio-synth/{run.seed}/patient/{index}")
    clock = run.clock
    system = run.system
    pid = ids()
    person = make_person(rng, index, pid, ids, system, clock)
    ctx = PatientCtx(run, rng, ids, pid, person.mrn)
    ctx.out.extend(patient_resources(rng, person, system, clock))
    birth_day = clock.day_of(person.birth)
    profile = assign_profile(rng, person.age, person.female, clock.days - 1, birth_day)
    stop = person.death_day if person.death_day is not None else clock.days - 1
    lab_org = system.sites[0].departments["inpatient"][0]
    st = PatientState(
        person,
        profile,
        stop,
        lab_org,
        a1c=profile.a1c + (1.2 if profile.onset.get("t2dm", 0) > 0 else 0.0),
    )
    # history before the simulated period
    for key, onset in sorted(profile.onset.items(), key=lambda kv: (kv[1], kv[0])):
        if onset <= 0:
            condition(ctx, st, key, onset * MINUTES_PER_DAY + 9 * 60, None, None, problem=True)
    for key in profile.allergies:
        _allergy(ctx, key, birth_day)
    if person.age >= 13:
        _smoking(ctx, profile.smoking)
    _history(ctx, st, birth_day)
    age_end = (clock.days - 1 - birth_day) / 365.25
    events = plan_care(rng, profile, age_end, person.female, clock.days, stop)
    for ev in events:
        emit_encounter(ctx, st, ev)
    # conditions starting late in the period, never seen at a visit
    for key, onset in sorted(profile.onset.items(), key=lambda kv: (kv[1], kv[0])):
        if key not in st.condition_ids and 0 < onset <= stop:
            condition(ctx, st, key, onset * MINUTES_PER_DAY + 9 * 60, None, None, problem=True)
    # refill requests: ~ every 90 days per chronic prescription, to its prescriber
    for _drug, (rx_id, rx_day, prescriber) in sorted(st.prescriptions.items()):
        refill = rx_day + rng.randint(60, 120)
        while refill < stop:
            refill_request(ctx, system.clinicians[prescriber], refill, rx_id)
            refill += rng.randint(75, 120)
    # patient portal messages to the primary care clinician
    active = [k for k in CHRONIC if k in profile.onset and profile.onset[k] <= stop]
    rate = (0.6 + 0.5 * len(active)) * person.pcp.inbox_load
    day = rng.expovariate(rate / 365.0)
    while day < stop:
        topic = (
            _TOPICS.get(active[rng.randrange(len(active))], "medications")
            if active
            else "test results"
        )
        message_thread(ctx, person.pcp, int(day), topic)
        day += rng.expovariate(rate / 365.0)
    return ctx


def _allergy(ctx: PatientCtx, key: str, birth_day: int) -> None:
    allergy = ALLERGIES[key]
    rng = ctx.rng
    recorded = max(birth_day + 400, -rng.randrange(30, 3650))
    ctx.out.append(
        {
            "resourceType": "AllergyIntolerance",
            "id": ctx.ids(),
            "clinicalStatus": _ALLERGY_CLINICAL,
            "verificationStatus": _ALLERGY_VERIFIED,
            "type": "allergy",
            "category": [allergy.category],
            "criticality": allergy.criticality,
            "code": {"coding": [allergy.substance.coding], "text": allergy.substance.display},
            "patient": ctx.patient_ref,
            "recordedDate": ctx.run.clock.date(recorded),
            "reaction": [
                {
                    "manifestation": [
                        {"coding": [allergy.reaction.coding], "text": allergy.reaction.display}
                    ],
                    "severity": "severe" if allergy.criticality == "high" else "mild",
                }
            ],
        }
    )


def _smoking(ctx: PatientCtx, status: str) -> None:
    value = SMOKING_VALUES[status]
    ctx.out.append(
        {
            "resourceType": "Observation",
            "id": ctx.ids(),
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "social-history",
                            "display": "Social History",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "72166-2",
                        "display": "Tobacco smoking status",
                    }
                ],
                "text": "Tobacco smoking status",
            },
            "subject": ctx.patient_ref,
            "effectiveDateTime": ctx.run.clock.date(-ctx.rng.randrange(1, 365)),
            "valueCodeableConcept": {"coding": [value.coding], "text": value.display},
        }
    )


def _history(ctx: PatientCtx, st: PatientState, birth_day: int) -> None:
    """Screening and childhood immunizations recorded before the simulated period."""
    clock = ctx.run.clock
    p = st.profile
    for key, day in (("colonoscopy", p.last_colonoscopy), ("mammography", p.last_mammogram)):
        if day is not None and day > birth_day:
            ctx.out.append(
                {
                    "resourceType": "Procedure",
                    "id": ctx.ids(),
                    "status": "completed",
                    "code": PROCEDURES[key].concept,
                    "subject": ctx.patient_ref,
                    "performedDateTime": clock.date(day),
                }
            )
    age_at_start = -birth_day / 365.25
    if age_at_start < 0.2:
        return
    for months, vaccines in (
        (2, ("hepb", "dtap", "ipv", "hib", "pcv13")),
        (12, ("mmr", "varicella", "hepa")),
        (48, ("dtap", "mmr")),
    ):
        day = birth_day + int(months * 30.4)
        if day < 0 and age_at_start < 19 and ctx.rng.random() < 0.93:
            for key in vaccines:
                ctx.out.append(
                    {
                        "resourceType": "Immunization",
                        "id": ctx.ids(),
                        "status": "completed",
                        "vaccineCode": VACCINES[key].concept,
                        "patient": ctx.patient_ref,
                        "occurrenceDateTime": clock.date(day),
                        "primarySource": False,
                    }
                )
