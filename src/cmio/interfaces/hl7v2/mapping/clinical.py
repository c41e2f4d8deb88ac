"""AL1 and DG1 to AllergyIntolerance and Condition (IG segment maps AL1[AllergyIntolerance],
DG1[Condition]; https://build.fhir.org/ig/HL7/v2-to-fhir/ ).

Neither segment carries a stable id in most feeds, so both are matched by a derived identifier
(patient + allergen code, patient + diagnosis code) or DG1-20 when sent: an ADT^A08 that repeats
them updates, never duplicates.
"""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import codeable, entity_identifier, vocab
from cmio.interfaces.hl7v2.mapping.patient import derived_identifier
from cmio.interfaces.hl7v2.mapping.values import datetime
from cmio.interfaces.hl7v2.mapping.vocabulary import VOCABULARY
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["allergy", "condition"]


def allergy(ctx: MapContext, al1: Segment, index: int, patient_ref: str, key: str) -> None:
    """AL1 -> AllergyIntolerance (IG map AL1[AllergyIntolerance]), matched by patient + allergen."""
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
    """DG1 -> Condition (IG map DG1[Condition]), matched by patient + diagnosis code + visit."""
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
