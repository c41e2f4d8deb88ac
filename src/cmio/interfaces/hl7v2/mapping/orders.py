"""ORM^O01/OML^O21 orders to ServiceRequest, VXU^V04 RXA/RXR to Immunization.

Segment maps ORC[ServiceRequest], OBR[ServiceRequest], ORC[Immunization], RXA[Immunization],
RXR[Immunization] of the HL7 V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
Orders are matched by placer order number (ORC-2/OBR-2), else filler order number;
immunizations by ORC-3/ORC-2, else patient + vaccine (RXA-5) + date (RXA-3).
"""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import (
    codeable,
    coding_system,
    date,
    datetime,
    entity_identifier,
    practitioner,
    v2_table_system,
    vocab,
)
from cmio.interfaces.hl7v2.mapping.obx import observation_value, quantity
from cmio.interfaces.hl7v2.mapping.patient import derived_identifier
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["immunization", "service_request"]


def _typed(ident: dict[str, Any], code: str) -> dict[str, Any]:
    return {**ident, "type": {"coding": [{"system": v2_table_system("0203"), "code": code}]}}


def _order_ids(
    ctx: MapContext, orc: Segment | None, obr: Segment | None, path: str
) -> list[dict[str, Any]]:
    out = []
    for n, code in ((2, "PLAC"), (3, "FILL")):
        rep = obr.field(n).repetition(1) if obr is not None else None
        if (not rep) and orc is not None:
            rep = orc.field(n).repetition(1)
        ident = entity_identifier(ctx, rep, f"{path}-{n}") if rep else None
        if ident:
            out.append(_typed(ident, code))
    return out


def service_request(
    ctx: MapContext,
    orc: Segment | None,
    obr: Segment | None,
    notes: list[Segment],
    index: int,
    patient_ref: str,
    encounter_ref: str | None,
    patient_key: str,
) -> str | None:
    """ORC + OBR -> ServiceRequest (IG maps ORC[ServiceRequest], OBR[ServiceRequest]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    path = f"OBR[{index}]" if obr is not None else f"ORC[{index}]"
    idents = _order_ids(ctx, orc, obr, path)
    code = codeable(ctx, obr.field(4).repetition(1), f"{path}-4") if obr is not None else None
    if code is None:
        ctx.issue(f"{path}-4", "no universal service identifier: order skipped")
        return None
    if not idents:
        idents = [derived_identifier("order", patient_key, obr.get(4) if obr else "", str(index))]
    out: dict[str, Any] = {"resourceType": "ServiceRequest", "identifier": idents}
    status = None
    if orc is not None and orc.get(5):
        status = vocab(ctx, "OrderStatus", orc.get(5), f"ORC[{index}]-5", "HL70038")
    elif orc is not None and orc.get(1):
        status = vocab(
            ctx, "OrderControlCode[ServiceRequest.status]", orc.get(1), f"ORC[{index}]-1", "HL70119"
        )
    out["status"] = status or "active"
    out["intent"] = "order"
    out["code"] = code
    out["subject"] = {"reference": patient_ref}
    if encounter_ref:
        out["encounter"] = {"reference": encounter_ref}
    if orc is not None:
        authored = datetime(ctx, orc.get(9), f"ORC[{index}]-9")
        if authored:
            out["authoredOn"] = authored
    requester = None
    if orc is not None:
        requester = practitioner(ctx, orc.field(12).repetition(1), f"ORC[{index}]-12")
    if requester is None and obr is not None:
        requester = practitioner(ctx, obr.field(16).repetition(1), f"{path}-16")
    if requester:
        out["requester"] = requester
    if obr is not None:
        when = datetime(ctx, obr.get(7), f"{path}-7")
        if when:
            out["occurrenceDateTime"] = when
        reasons = [
            c
            for i, rep in enumerate(obr.field(31).repetitions, 1)
            if (c := codeable(ctx, rep, f"{path}-31({i})"))
        ]
        if reasons:
            out["reasonCode"] = reasons
        if obr.get(5) == "S" or (orc is not None and orc.get(7, 1, 6) == "S"):
            out["priority"] = "stat"
    texts = [n.get(3) for n in notes if n.get(3)]
    if texts:
        out["note"] = [{"text": t} for t in texts]
    ident = idents[0]
    return ctx.put(
        out,
        f"ServiceRequest|{ident['system']}|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )


def immunization(
    ctx: MapContext,
    orc: Segment | None,
    rxa: Segment,
    rxr: Segment | None,
    observations: list[Segment],
    index: int,
    patient_ref: str,
    encounter_ref: str | None,
    patient_key: str,
) -> str | None:
    """ORC + RXA + RXR (+ OBX) -> Immunization (IG maps ORC/RXA/RXR[Immunization]).

    OBX segments under the RXA (funding, VIS, reactions) become Observations ``partOf`` it.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    path = f"RXA[{index}]"
    vaccine = codeable(ctx, rxa.field(5).repetition(1), f"{path}-5")
    when = datetime(ctx, rxa.get(3), f"{path}-3")
    if vaccine is None or when is None:
        ctx.issue(path, "no vaccine (RXA-5) or administration time (RXA-3): RXA skipped")
        return None
    idents = _order_ids(ctx, orc, None, f"ORC[{index}]") if orc is not None else []
    if not idents:
        idents = [derived_identifier("immunization", patient_key, rxa.get(5), rxa.get(3))]
    out: dict[str, Any] = {"resourceType": "Immunization", "identifier": idents}
    if rxa.get(21) == "D":
        status = "entered-in-error"
    elif rxa.get(20):
        status = vocab(ctx, "CompletionStatus", rxa.get(20), f"{path}-20", "HL70322") or "completed"
    else:
        status = "completed"
    out["status"] = status
    reason = codeable(ctx, rxa.field(18).repetition(1), f"{path}-18")
    if reason:
        out["statusReason"] = reason
    out["vaccineCode"] = vaccine
    out["patient"] = {"reference": patient_ref}
    if encounter_ref:
        out["encounter"] = {"reference": encounter_ref}
    out["occurrenceDateTime"] = when
    if rxa.get(21) == "A" and (recorded := datetime(ctx, rxa.get(22), f"{path}-22")):
        out["recorded"] = recorded
    source = rxa.get(9)
    if source[:2].isdigit():
        out["primarySource"] = source == "00"
    amount = rxa.get(6)
    if amount and amount != "999":
        dose = quantity(ctx, amount, rxa.field(7).repetition(1), f"{path}-6")
        if dose:
            out["doseQuantity"] = dose
    performers = [
        {
            "function": {
                "coding": [
                    {
                        "system": v2_table_system("0443"),
                        "code": "AP",
                        "display": "Administering Provider",
                    }
                ]
            },
            "actor": ref,
        }
        for i, rep in enumerate(rxa.field(10).repetitions, 1)
        if (ref := practitioner(ctx, rep, f"{path}-10({i})"))
    ]
    if performers:
        out["performer"] = performers
    if rxa.get(15):
        out["lotNumber"] = rxa.get(15)
    expiry = date(ctx, rxa.get(16), f"{path}-16")
    if expiry:
        out["expirationDate"] = expiry
    maker = rxa.field(17).repetition(1)
    if maker and (maker.get(1) or maker.get(2)):
        org: dict[str, Any] = {"display": maker.get(2) or maker.get(1)}
        if maker.get(1):
            system, _ = coding_system(ctx, maker.get(3) or "MVX")
            org["identifier"] = {"system": system, "value": maker.get(1)}
        out["manufacturer"] = org
    reasons = [
        c
        for i, r in enumerate(rxa.field(19).repetitions, 1)
        if (c := codeable(ctx, r, f"{path}-19({i})"))
    ]
    if reasons:
        out["reasonCode"] = reasons
    if rxr is not None:
        route = codeable(
            ctx, rxr.field(1).repetition(1), f"RXR[{index}]-1", "RouteOfAdministration", "HL70162"
        )
        if route:
            out["route"] = route
        site = codeable(ctx, rxr.field(2).repetition(1), f"RXR[{index}]-2", v2_table="HL70163")
        if site:
            out["site"] = site
    ident = idents[0]
    url = ctx.put(
        out,
        f"Immunization|{ident['system']}|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )
    for i, obx in enumerate(observations, 1):
        _immunization_observation(ctx, obx, f"OBX[{index}.{i}]", url, ident, patient_ref, when)
    return url


def _immunization_observation(
    ctx: MapContext,
    obx: Segment,
    path: str,
    immunization_url: str,
    parent: dict[str, Any],
    patient_ref: str,
    when: str,
) -> None:
    code = codeable(ctx, obx.field(3).repetition(1), f"{path}-3")
    if code is None:
        ctx.issue(f"{path}-3", "no observation identifier: OBX skipped")
        return
    ident = derived_identifier(
        "immunization-observation",
        parent["system"],
        parent["value"],
        obx.get(3),
        obx.get(4),
        obx.get(1),
    )
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [ident],
        "status": vocab(
            ctx, "ObservationResultStatusCodesInterpretation", obx.get(11), f"{path}-11", "HL70085"
        )
        or "final",
        "code": code,
        "subject": {"reference": patient_ref},
        "partOf": [{"reference": immunization_url}],
        "effectiveDateTime": datetime(ctx, obx.get(14), f"{path}-14") or when,
    }
    out.update(observation_value(ctx, obx, path))
    ctx.put(out, f"Observation|{ident['value']}", identifier_query(ident["system"], ident["value"]))
