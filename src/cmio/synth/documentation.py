"""What is documented around an encounter: clinical notes, radiology reports, order audits.

Split from :mod:`cmio.synth.encounters` (which calls these in the same order, so the
generated data is unchanged): notes as DocumentReference
(https://hl7.org/fhir/R4/documentreference.html), the screening mammography report as
DiagnosticReport (https://hl7.org/fhir/R4/diagnosticreport.html), and the audit trail
of orders with delegated-order Provenance.
"""

from __future__ import annotations

from cmio.synth.activity import audit, note, order_provenance, work_minute
from cmio.synth.care import Event
from cmio.synth.clinical_codes import DIAGNOSES, VISITS
from cmio.synth.codes import MAMMOGRAM_REPORT
from cmio.synth.context import PatientCtx
from cmio.synth.ids import MINUTES_PER_DAY
from cmio.synth.inbox import inbox_task
from cmio.synth.observations import PatientState
from cmio.synth.system import Clinician

__all__ = ["encounter_notes", "mammogram_report", "order_audit"]

_RAD_CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "code": "RAD",
                "display": "Radiology",
            }
        ]
    }
]


def mammogram_report(
    ctx: PatientCtx, st: PatientState, enc_id: str, org: str, performed: int
) -> None:
    """The radiologist's screening mammography report, reviewed by the primary care clinician.

    A DiagnosticReport (https://hl7.org/fhir/R4/diagnosticreport.html) with a BI-RADS
    conclusion, issued one to three days later, and an inbox task for the PCP.
    """
    rng = ctx.rng
    clock = ctx.run.clock
    ready = performed + rng.randint(1, 3) * MINUTES_PER_DAY + rng.randint(-120, 120)
    # ~ 10% of screening mammograms are recalled for more imaging (BCSC benchmarks)
    recall = rng.random() < 0.1
    report_id = ctx.ids()
    ctx.out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": report_id,
            "status": "final",
            "category": _RAD_CATEGORY,
            "code": {"coding": [MAMMOGRAM_REPORT.coding], "text": MAMMOGRAM_REPORT.display},
            "subject": ctx.patient_ref,
            "encounter": {"reference": f"Encounter/{enc_id}"},
            "effectiveDateTime": clock.instant(performed),
            "issued": clock.instant(ready),
            "performer": [{"reference": f"Organization/{org}"}],
            "conclusion": "BI-RADS 0: incomplete, additional imaging evaluation needed."
            if recall
            else "BI-RADS 1: negative.",
        }
    )
    inbox_task(ctx, st.person.pcp, f"DiagnosticReport/{report_id}", ready, enc_id)


def order_audit(ctx: PatientCtx, c: Clinician, team: Clinician, target: str, at: int) -> None:
    """The audit event of an order, entered by the clinician or, as often as the
    clinician delegates (``team_orders``), by the team member with a Provenance naming
    the clinician (https://hl7.org/fhir/R4/provenance.html)."""
    if ctx.rng.random() < c.team_orders:
        audit(ctx, team, "C", "orders", at, ctx.rng.uniform(0.5, 2.0), target)
        order_provenance(ctx, target, c, team, at + 2)
    else:
        audit(ctx, c, "C", "orders", at, ctx.rng.uniform(0.5, 2.0), target)


def encounter_notes(
    ctx: PatientCtx,
    st: PatientState,
    ev: Event,
    c: Clinician,
    enc_id: str,
    period: dict[str, str],
    start: int,
    end: int,
    org: str,
) -> None:
    """The encounter's clinical notes (DocumentReference): H&P, a progress note per
    inpatient day and a discharge summary for admissions; one ED, consult, procedure or
    progress note otherwise, signed when the clinician works on it
    (https://hl7.org/fhir/R4/documentreference.html)."""
    rng = ctx.rng
    reasons = ", ".join(DIAGNOSES[k].snomed.display.lower() for k in ev.reasons)
    visit = VISITS[ev.kind].snomed.display
    text = (
        f"{visit}. Patient {st.person.given} {st.person.family} seen for {reasons}. "
        f"History reviewed, medications reconciled. Assessment and plan discussed with the patient. "
        f"Electronically signed by {c.display}."
    )
    day = end // MINUTES_PER_DAY
    if ev.kind == "inpatient":
        note(ctx, c, "hp", enc_id, period, start + rng.randint(30, 180), text, org)
        for d in range(1, ev.los):
            at = work_minute(
                ctx, c, start // MINUTES_PER_DAY + d, rng.randint(9 * 60, 15 * 60), 0.5
            )
            note(ctx, c, "progress", enc_id, period, at, text, org)
        if not ev.dies:
            note(
                ctx,
                c,
                "discharge",
                enc_id,
                period,
                max(start + 60, end - rng.randint(20, 120)),
                text,
                org,
            )
        return
    kind = "ed" if ev.kind == "emergency" else "consult" if ev.kind == "specialist" else "progress"
    if ev.kind == "procedure" and ev.procs and ev.procs[0] == "colonoscopy":
        kind = "procedure"
    if ev.kind == "emergency":
        at = end - rng.randint(5, 60)
    else:
        at = work_minute(ctx, c, day, end % MINUTES_PER_DAY + rng.randint(0, 20), 1.0)
    note(ctx, c, kind, enc_id, period, max(at, start + 5), text, org)
