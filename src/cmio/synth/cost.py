"""Cost: a Claim and an ExplanationOfBenefit for every encounter.

Claim (https://hl7.org/fhir/R4/claim.html) lines carry CPT/HCPCS codes for the
visit, procedures, labs and vaccines and RxNorm codes for medications, with list
charges; the ExplanationOfBenefit (https://hl7.org/fhir/R4/explanationofbenefit.html)
adjudicates them under the patient's Coverage: allowed amount by payer type
(Medicare and Medicaid pay roughly a third of list charges, commercial plans about
half), office copay, coinsurance, and the payer's benefit.
"""

from __future__ import annotations

from typing import Any

from cmio.synth.codes import Code
from cmio.synth.context import PatientCtx
from cmio.synth.system import Payer

__all__ = ["bill"]

_CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
_ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
_TYPES = {
    "professional": {
        "coding": [{"system": _CLAIM_TYPE, "code": "professional", "display": "Professional"}]
    },
    "institutional": {
        "coding": [{"system": _CLAIM_TYPE, "code": "institutional", "display": "Institutional"}]
    },
}
_PRIORITY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/processpriority",
            "code": "normal",
            "display": "Normal",
        }
    ]
}
_CAT = {
    key: {"coding": [{"system": _ADJ, "code": key, "display": display}]}
    for key, display in (
        ("submitted", "Submitted Amount"),
        ("eligible", "Eligible Amount"),
        ("copay", "CoPay"),
        ("deductible", "Deductible"),
        ("benefit", "Benefit Amount"),
    )
}


def _money(value: float) -> dict[str, Any]:
    return {"value": round(value, 2), "currency": "USD"}


def bill(
    ctx: PatientCtx,
    encounter_id: str,
    period: dict[str, str],
    institutional: bool,
    lines: list[tuple[Code, float]],
    diagnoses: list[dict[str, Any]],
    provider_org: str,
    payer: Payer,
    coverage_id: str,
    insurer_fallback: str,
) -> None:
    """Append the Claim and ExplanationOfBenefit of an encounter.

    Args:
        ctx: the patient context.
        encounter_id: the Encounter billed.
        period: the encounter period (billable period).
        institutional: facility claim (ED, inpatient) rather than professional.
        lines: (product or service code, charge) per item.
        diagnoses: CodeableConcepts of the diagnoses, primary first.
        provider_org: billing Organization id.
        payer: the patient's payer.
        coverage_id: the patient's Coverage id.
        insurer_fallback: Organization standing as insurer for self-pay patients.
    """
    rng = ctx.rng
    claim_id, eob_id = ctx.ids(), ctx.ids()
    created = period["end"]
    kind = _TYPES["institutional" if institutional else "professional"]
    enc_ref = [{"reference": f"Encounter/{encounter_id}"}]
    coverage = {"reference": f"Coverage/{coverage_id}"}
    provider = {"reference": f"Organization/{provider_org}"}
    insurer = {
        "reference": f"Organization/{payer.org_id if payer.kind != 'self' else insurer_fallback}"
    }
    serviced = period["start"][:10]
    items: list[dict[str, Any]] = []
    eob_items: list[dict[str, Any]] = []
    total = allowed_total = patient_total = 0.0
    copay_left = payer.copay if not institutional else payer.copay * 5
    for seq, (code, charge) in enumerate(lines, 1):
        charge = round(charge * rng.uniform(0.9, 1.15), 2)
        product = {"coding": [code.coding], "text": code.display}
        items.append(
            {
                "sequence": seq,
                "productOrService": product,
                "servicedDate": serviced,
                "net": _money(charge),
                "encounter": enc_ref,
            }
        )
        allowed = charge * payer.allowed
        copay = min(copay_left, allowed)
        copay_left -= copay
        coins = (allowed - copay) * payer.patient_share
        benefit = allowed - copay - coins
        total += charge
        allowed_total += allowed
        patient_total += copay + coins
        adjudication = [
            {"category": _CAT["submitted"], "amount": _money(charge)},
            {"category": _CAT["eligible"], "amount": _money(allowed)},
            {"category": _CAT["benefit"], "amount": _money(benefit)},
        ]
        if copay:
            adjudication.append({"category": _CAT["copay"], "amount": _money(copay)})
        if coins:
            adjudication.append({"category": _CAT["deductible"], "amount": _money(coins)})
        eob_items.append(
            {
                "sequence": seq,
                "productOrService": product,
                "servicedDate": serviced,
                "net": _money(charge),
                "adjudication": adjudication,
            }
        )
    diagnosis = [
        {"sequence": i, "diagnosisCodeableConcept": dx} for i, dx in enumerate(diagnoses, 1)
    ]
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": claim_id,
        "status": "active",
        "type": kind,
        "use": "claim",
        "patient": ctx.patient_ref,
        "billablePeriod": period,
        "created": created,
        "insurer": insurer,
        "provider": provider,
        "priority": _PRIORITY,
        "insurance": [{"sequence": 1, "focal": True, "coverage": coverage}],
        "item": items,
        "total": _money(total),
    }
    if diagnosis:
        claim["diagnosis"] = diagnosis
    ctx.out.append(claim)
    benefit_total = allowed_total - patient_total
    ctx.out.append(
        {
            "resourceType": "ExplanationOfBenefit",
            "id": eob_id,
            "status": "active",
            "type": kind,
            "use": "claim",
            "patient": ctx.patient_ref,
            "billablePeriod": period,
            "created": created,
            "insurer": insurer,
            "provider": provider,
            "claim": {"reference": f"Claim/{claim_id}"},
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": coverage}],
            "item": eob_items,
            "total": [
                {"category": _CAT["submitted"], "amount": _money(total)},
                {"category": _CAT["eligible"], "amount": _money(allowed_total)},
                {"category": _CAT["benefit"], "amount": _money(benefit_total)},
            ],
            "payment": {"amount": _money(benefit_total)},
        }
    )
