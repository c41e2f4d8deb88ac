"""AL1, DG1 and IN1 to AllergyIntolerance, Condition and Coverage (IG segment maps
AL1[AllergyIntolerance], DG1[Condition], IN1[Coverage]; https://build.fhir.org/ig/HL7/v2-to-fhir/ ).

These segments carry no stable id in most feeds, so they are matched by a derived identifier
(patient + allergen code, patient + diagnosis code, patient + insurer + policy) or DG1-20 when
sent: an ADT^A08 that repeats them updates, never duplicates.
"""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import (
    authority_system,
    codeable,
    entity_identifier,
    identifier,
    vocab,
)
from cmio.interfaces.hl7v2.mapping.patient import derived_identifier
from cmio.interfaces.hl7v2.mapping.values import date, datetime
from cmio.interfaces.hl7v2.mapping.vocabulary import VOCABULARY
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["allergy", "condition", "coverage"]


def allergy(ctx: MapContext, al1: Segment, index: int, patient_ref: str, key: str) -> None:
    """AL1 -> AllergyIntolerance (IG map AL1[AllergyIntolerance]), matched by patient + allergen.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    path = f"AL1[{index}]"
    code = codeable(ctx, al1.field(3).repetition(1), f"{path}-3")
    if code is None:
        ctx.issue(f"{path}-3", "no allergen: AL1 skipped")
        return
    allergen = al1.get(3, 1, 1) or al1.get(3, 1, 2)
    ident = derived_identifier("allergy", key, allergen)
    out: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "identifier": [ident],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "code": code,
        "patient": {"reference": patient_ref},
    }
    category = vocab(
        ctx, "AllergenType[AllergyIntoleranceCategory]", al1.get(2), f"{path}-2", "HL70127"
    )
    if category:
        out["category"] = [category]
    kind = al1.get(2)
    if kind:
        mapped = VOCABULARY["AllergyType"].get(kind)
        if mapped:
            out["type"] = mapped[0]
    criticality = al1.get(4, 1, 1)
    if criticality:
        crit = vocab(
            ctx,
            "AllergySeverity[AllergyIntolerance.criticality]",
            criticality,
            f"{path}-4",
            "HL70128",
        )
        if crit:
            out["criticality"] = crit
    reactions = [r.value for r in al1.field(5).repetitions if r.value]
    if reactions:
        out["reaction"] = [{"manifestation": [{"text": r} for r in reactions]}]
    onset = datetime(ctx, al1.get(6), f"{path}-6")
    if onset:
        out["onsetDateTime"] = onset
    ctx.put(
        out,
        f"AllergyIntolerance|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )


def condition(
    ctx: MapContext, dg1: Segment, index: int, patient_ref: str, encounter_ref: str | None, key: str
) -> None:
    """DG1 -> Condition (IG map DG1[Condition]), matched by patient + diagnosis code + visit.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    path = f"DG1[{index}]"
    code = codeable(ctx, dg1.field(3).repetition(1), f"{path}-3")
    if code is None:
        ctx.issue(f"{path}-3", "no diagnosis code: DG1 skipped")
        return
    ident = derived_identifier("condition", key, dg1.get(3, 1, 1) or dg1.get(3, 1, 2))
    sent = entity_identifier(ctx, dg1.field(20).repetition(1), f"{path}-20")
    if sent:
        ident = sent
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "identifier": [ident],
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": code,
        "subject": {"reference": patient_ref},
    }
    if encounter_ref:
        out["encounter"] = {"reference": encounter_ref}
    recorded = datetime(ctx, dg1.get(5), f"{path}-5")
    if recorded:
        out["onsetDateTime"] = recorded
    ctx.put(out, f"Condition|{ident['value']}", identifier_query(ident["system"], ident["value"]))


def coverage(
    ctx: MapContext, in1: Segment, index: int, patient_ref: str, key: str, update: bool
) -> None:
    """IN1 -> Coverage (IG map IN1[Coverage]), matched by patient + insurer (IN1-3) + plan/policy.

    Without an insurer (IN1-3, IN1-4) the coverage is self-pay: the patient is the payor.

    ``update``: a conditional update (ADT) rather than a create-if-missing (other messages).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    path = f"IN1[{index}]"
    company = in1.texts(3)
    company_id = company[0] if company else ""
    payer_name = in1.get(4)
    policy = in1.get(36) or in1.get(49) or in1.get(2)
    ident = derived_identifier("coverage", key, company_id or payer_name or "self", policy)
    out: dict[str, Any] = {"resourceType": "Coverage", "identifier": [ident]}
    member = (
        identifier(ctx, in1.field(49).repetition(1), f"{path}-49") if in1.raw_field(49) else None
    )
    if member:
        out["identifier"].append(member)
    out["status"] = "active"
    plan_type = codeable(ctx, in1.texts(15), f"{path}-15", v2_table="HL70086")
    if plan_type:
        out["type"] = plan_type
    if in1.get(36):
        out["subscriberId"] = in1.get(36)
    out["beneficiary"] = {"reference": patient_ref}
    relationship = codeable(ctx, in1.texts(17), f"{path}-17", "Relationship", "HL70063")
    if relationship:
        out["relationship"] = relationship
    if in1.get(17) == "SEL":
        out["subscriber"] = {"reference": patient_ref}
    start, end = date(ctx, in1.get(12), f"{path}-12"), date(ctx, in1.get(13), f"{path}-13")
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        out["period"] = period
    payer: dict[str, Any] = {"display": payer_name or company_id}
    if not (company_id or payer_name):  # no insurer: self-pay, the patient pays
        payer = {"reference": patient_ref}
    elif company_id:
        payer["identifier"] = {
            "system": authority_system(
                ctx, *in1.field(3).repetition(1).component(4).subcomponents[:3]
            ),
            "value": company_id,
        }
    out["payor"] = [payer]
    classes = [
        {"type": {"coding": [{"system": _COVERAGE_CLASS, "code": kind}]}, "value": value, **extra}
        for kind, value, extra in (
            ("plan", in1.get(2), {"name": in1.get(2, 1, 2)} if in1.get(2, 1, 2) else {}),
            ("group", in1.get(8), {"name": in1.get(9)} if in1.get(9) else {}),
        )
        if value
    ]
    if classes:
        out["class"] = classes
    query = identifier_query(ident["system"], ident["value"])
    if update:
        ctx.put(out, f"Coverage|{ident['value']}", query)
    else:
        ctx.create(out, f"Coverage|{ident['value']}", query)


_COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
