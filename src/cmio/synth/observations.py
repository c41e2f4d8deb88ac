"""Patient state over time, and the observations and conditions it produces.

Vital signs follow the US Core vital signs shape (category ``vital-signs``, LOINC
codes, UCUM units; https://hl7.org/fhir/R4/observation-vitalsigns.html), blood
pressure as the 85354-9 panel with 8480-6/8462-4 components. Lab values come from
the patient's state: HbA1c drifts per visit and falls after treatment is started or
intensified; glucose follows HbA1c (ADAG: eAG = 28.7 x A1c - 46.7); LDL falls ~ 35%
on a statin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.synth.care import Event
from cmio.synth.clinical_codes import (
    DIAGNOSES,
    FIT_VALUES,
    OBSERVATIONS,
    PANELS,
    PHQ9_PANEL,
    ObservationDef,
)
from cmio.synth.codes import UCUM
from cmio.synth.context import PatientCtx
from cmio.synth.demographics import Person
from cmio.synth.disease import Profile
from cmio.synth.system import Clinician

__all__ = ["PatientState", "condition", "emit_labs", "emit_phq9", "emit_vitals"]

_OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
_CATEGORIES = {
    key: [{"coding": [{"system": _OBS_CAT, "code": key, "display": display}]}]
    for key, display in (
        ("vital-signs", "Vital Signs"),
        ("laboratory", "Laboratory"),
        ("survey", "Survey"),
        ("social-history", "Social History"),
        ("procedure", "Procedure"),
    )
}
_LAB_REPORT = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "code": "LAB",
                "display": "Laboratory",
            }
        ]
    }
]
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFIED = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed",
        }
    ]
}
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_PROBLEM = [
    {"coding": [{"system": _CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}]}
]
_ENC_DX = [
    {
        "coding": [
            {"system": _CATEGORY, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}
        ]
    }
]


@dataclass(slots=True)
class PatientState:
    """What changes while a patient is simulated.

    Attributes:
        person: demographics. profile: clinical profile. stop: last day alive.
        condition_ids: problem-list condition key -> Condition id.
        conditions: problem-list condition key -> the Condition (until resolved).
        started_meds: drugs prescribed so far. a1c: current HbA1c.
        prescriptions: chronic drug -> (latest MedicationRequest id, day, prescriber index).
        lab_org: Organization id of the performing laboratory.
    """

    person: Person
    profile: Profile
    stop: int
    lab_org: str
    a1c: float = 5.4
    condition_ids: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_meds: set[str] = field(default_factory=set)
    prescriptions: dict[str, tuple[str, int, int]] = field(default_factory=dict)


def _quantity(od: ObservationDef, value: float) -> dict[str, Any]:
    v: float | int = round(value, od.decimals) if od.decimals else round(value)
    return {"value": v, "unit": od.unit, "system": UCUM, "code": od.unit}


def observation(
    ctx: PatientCtx,
    key: str,
    value: float | None,
    enc_ref: dict[str, str],
    minute: int,
    concept_value: Any = None,
) -> str:
    """Append an Observation of ``key`` (a :data:`OBSERVATIONS` key); returns its id."""
    od = OBSERVATIONS[key]
    oid = ctx.ids()
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": _CATEGORIES[od.category],
        "code": od.concept,
        "subject": ctx.patient_ref,
        "encounter": enc_ref,
        "effectiveDateTime": ctx.run.clock.instant(minute),
    }
    if concept_value is not None:
        obs["valueCodeableConcept"] = concept_value
    elif value is not None:
        obs["valueQuantity"] = _quantity(od, value)
    ctx.out.append(obs)
    return oid


def emit_vitals(
    ctx: PatientCtx, st: PatientState, ev: Event, enc_ref: dict[str, str], minute: int
) -> None:
    """Blood pressure, heart rate, weight and BMI (plus temperature and SpO2 when acute)."""
    rng = ctx.rng
    p = st.profile
    age = st.person.age_on(ctx.run.clock, minute // 1440)
    if age >= 3:
        od_s, od_d = OBSERVATIONS["sbp"], OBSERVATIONS["dbp"]
        obs = {
            "resourceType": "Observation",
            "id": ctx.ids(),
            "status": "final",
            "category": _CATEGORIES["vital-signs"],
            "code": OBSERVATIONS["bp"].concept,
            "subject": ctx.patient_ref,
            "encounter": enc_ref,
            "effectiveDateTime": ctx.run.clock.instant(minute),
            "component": [
                {"code": od_s.concept, "valueQuantity": _quantity(od_s, p.sbp + rng.gauss(0, 7))},
                {"code": od_d.concept, "valueQuantity": _quantity(od_d, p.dbp + rng.gauss(0, 5))},
            ],
        }
        ctx.out.append(obs)
    observation(ctx, "hr", rng.gauss(75 if age >= 12 else 100, 9), enc_ref, minute)
    height = p.height if age >= 18 else 50 + age * 25 if age < 2 else 75 + (age - 2) * 6.2
    weight = p.bmi * (height / 100) ** 2 if age >= 2 else 3.4 + age * 7
    observation(ctx, "weight", weight * rng.uniform(0.98, 1.02), enc_ref, minute)
    if age < 18 or ev.kind.startswith("wellness"):
        observation(ctx, "height", height, enc_ref, minute)
    if age >= 2:
        observation(ctx, "bmi", weight / (height / 100) ** 2, enc_ref, minute)
    if ev.kind in ("acute", "emergency", "inpatient"):
        fever = ev.reasons[0] in ("influenza", "pneumonia", "sepsis", "strep", "covid", "otitis")
        observation(ctx, "temp", rng.gauss(38.6 if fever else 36.8, 0.3), enc_ref, minute)
        observation(
            ctx,
            "spo2",
            min(100, rng.gauss(91 if ev.reasons[0] in ("pneumonia", "copd_exac") else 97.5, 1.5)),
            enc_ref,
            minute,
        )


def emit_phq9(ctx: PatientCtx, st: PatientState, enc_ref: dict[str, str], minute: int) -> None:
    """PHQ-9 (44249-1 panel with the 44261-6 total score); scores improve under treatment."""
    p = st.profile
    treated = "fluoxetine" in st.started_meds
    base = p.phq9 * (0.7 if treated else 1.0)
    score = max(0, min(27, round(base + ctx.rng.gauss(0, 2.5))))
    total = observation(ctx, "phq9", score, enc_ref, minute)
    ctx.out.append(
        {
            "resourceType": "Observation",
            "id": ctx.ids(),
            "status": "final",
            "category": _CATEGORIES["survey"],
            "code": {"coding": [PHQ9_PANEL.coding], "text": PHQ9_PANEL.display},
            "subject": ctx.patient_ref,
            "encounter": enc_ref,
            "effectiveDateTime": ctx.run.clock.instant(minute),
            "hasMember": [{"reference": f"Observation/{total}"}],
        }
    )


def _lab_value(ctx: PatientCtx, st: PatientState, key: str) -> float:
    rng = ctx.rng
    p = st.profile
    if key == "a1c":
        # untreated new diagnoses start high and settle at the treated level
        treated = "metformin" in st.started_meds or p.onset.get("t2dm", 1) <= 0
        target = p.a1c + (0.0 if treated else 1.2)
        st.a1c = max(4.6, min(14.0, st.a1c + 0.5 * (target - st.a1c) + rng.gauss(0, 0.25)))
        return st.a1c
    if key == "glucose":
        return max(60.0, 28.7 * st.a1c - 46.7 + rng.gauss(0, 15))
    statin = "atorvastatin" in st.started_meds or "simvastatin" in st.started_meds
    mean = {
        "ldl": p.ldl * (0.65 if statin else 1.0),
        "chol": p.ldl * (0.65 if statin else 1.0) + 52.0 + (30.0 if p.bmi >= 30 else 23.0),
        "hdl": 52.0,
        "trig": 150.0 if p.bmi >= 30 else 115.0,
        "creatinine": 1.6 if "ckd3" in p.onset else 0.9,
        "sodium": 139.0,
        "potassium": 4.2,
        "hgb": 13.2 if st.person.female else 14.6,
        "wbc": 7.2,
        "plt": 250.0,
        "uacr": 60.0 if p.a1c_control == "poor" else 15.0,
    }[key]
    sd = {"ldl": 12.0, "chol": 14.0, "hdl": 9.0, "trig": 30.0, "creatinine": 0.12, "sodium": 2.0, "potassium": 0.3,
          "hgb": 0.9, "wbc": 1.6, "plt": 45.0, "uacr": 8.0}[key]  # fmt: skip
    return max(0.1, rng.gauss(mean, sd))


def emit_labs(
    ctx: PatientCtx,
    st: PatientState,
    panel_key: str,
    enc_ref: dict[str, str],
    sr_id: str,
    collected: int,
    ready: int,
) -> str:
    """Results of one ordered panel (Observations and a DiagnosticReport); returns the report id."""
    panel = PANELS[panel_key]
    results: list[dict[str, str]] = []
    values: dict[str, float] = {}
    for member in panel.members:
        if member == "fit":
            fit = FIT_VALUES["positive" if ctx.rng.random() < 0.05 else "negative"]
            oid = observation(
                ctx, member, None, enc_ref, collected, {"coding": [fit.coding], "text": fit.display}
            )
        else:
            value = _lab_value(ctx, st, member)
            values[member] = value
            oid = observation(ctx, member, value, enc_ref, collected)
        results.append({"reference": f"Observation/{oid}"})
    report_id = ctx.ids()
    clock = ctx.run.clock
    ctx.out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": report_id,
            "basedOn": [{"reference": f"ServiceRequest/{sr_id}"}],
            "status": "final",
            "category": _LAB_REPORT,
            "code": {"coding": [panel.loinc.coding], "text": panel.loinc.display},
            "subject": ctx.patient_ref,
            "encounter": enc_ref,
            "effectiveDateTime": clock.instant(collected),
            "issued": clock.instant(ready),
            "performer": [{"reference": f"Organization/{st.lab_org}"}],
            "result": results,
        }
    )
    return report_id


def condition(
    ctx: PatientCtx,
    st: PatientState,
    key: str,
    minute: int,
    enc_id: str | None,
    recorder: Clinician | None,
    *,
    problem: bool,
) -> str:
    """Append a Condition (ICD-10-CM and SNOMED CT codings); returns its id.

    Problem-list conditions stay active unless resolved later in the simulation
    (pregnancy); encounter diagnoses of acute problems resolve within weeks.
    """
    cid = ctx.ids()
    clock = ctx.run.clock
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": _VERIFIED,
        "category": _PROBLEM if problem else _ENC_DX,
        "code": DIAGNOSES[key].concept,
        "subject": ctx.patient_ref,
        "onsetDateTime": clock.instant(minute),
        "recordedDate": clock.instant(max(minute, minute + 5)),
    }
    if enc_id:
        resource["encounter"] = {"reference": f"Encounter/{enc_id}"}
    if recorder:
        resource["recorder"] = recorder.reference
    if not problem:
        resource["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": "resolved"}]}
        resource["abatementDateTime"] = clock.date(minute // 1440 + ctx.rng.randint(5, 21))
    else:
        st.condition_ids[key] = cid
        st.conditions[key] = resource
    ctx.out.append(resource)
    return cid
