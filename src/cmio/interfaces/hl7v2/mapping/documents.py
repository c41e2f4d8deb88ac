"""SIU^S12-S15 to Appointment, MDM^T02 (TXA + OBX) to DocumentReference.

The IG publishes message maps SIU_S12 and MDM_T02 (https://build.fhir.org/ig/HL7/v2-to-fhir/ ;
segment maps SCH[Appointment], TXA[DocumentReference], OBX[DocumentReference]); their segment
maps are not in the shared subset, so the fields below follow the v2.5.1 segment definitions
(chapters 10 and 9, https://v2plus.hl7.org/2021Jan/index.html ) and the FHIR R4 resources.
Appointments are matched by filler appointment id (SCH-2), else placer (SCH-1); documents by
the unique document number (TXA-12).
"""

from __future__ import annotations

import base64
import datetime as dt
from types import MappingProxyType
from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import (
    codeable,
    entity_identifier,
    instant,
    practitioner,
    v2_table_system,
)
from cmio.interfaces.hl7v2.mapping.patient import derived_identifier
from cmio.interfaces.hl7v2.message import Segment

__all__ = ["appointment", "document_reference"]

# SCH-25 filler status code (HL7 Table 0278) -> Appointment.status
_APPOINTMENT_STATUS = MappingProxyType(
    {
        "PENDING": "pending",
        "WAITLIST": "waitlist",
        "BOOKED": "booked",
        "STARTED": "arrived",
        "COMPLETE": "fulfilled",
        "CANCELLED": "cancelled",
        "DC": "cancelled",
        "DELETED": "entered-in-error",
        "BLOCKED": "booked",
        "OVERBOOK": "booked",
        "NOSHOW": "noshow",
    }
)
_EVENT_STATUS = MappingProxyType({"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled",
                 "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow"})  # fmt: skip
# start date/time field of the resource segments (AIS-4, AIG-8, AIL-6, AIP-6)
_RESOURCE_START = MappingProxyType({"AIS": 4, "AIG": 8, "AIL": 6, "AIP": 6})
_MINUTES = MappingProxyType({"MIN": 1, "M": 1, "H": 60, "HR": 60, "S": 1 / 60, "D": 1440})


def appointment(
    ctx: MapContext,
    sch: Segment,
    resources: list[Segment],
    notes: list[Segment],
    event: str,
    patient_ref: str | None,
) -> str | None:
    """SCH (+ AIS/AIG/AIL/AIP, NTE) -> Appointment.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    placer = entity_identifier(ctx, sch.field(1).repetition(1), "SCH-1")
    filler = entity_identifier(ctx, sch.field(2).repetition(1), "SCH-2")
    idents = [i for i in (placer, filler) if i]
    if not idents:
        ctx.issue("SCH-1", "no placer or filler appointment id: appointment skipped")
        return None
    out: dict[str, Any] = {"resourceType": "Appointment", "identifier": idents}
    status = _APPOINTMENT_STATUS.get(sch.get(25).upper()) if sch.get(25) else None
    if sch.get(25) and status is None:
        ctx.report("SCH-25", "HL70278", sch.get(25), sch.get(25, 1, 2), "unknown filler status")
    out["status"] = (
        _EVENT_STATUS.get(event)
        if event in ("S15", "S17")
        else status or _EVENT_STATUS.get(event, "booked")
    )
    reason = codeable(ctx, sch.field(7).repetition(1), "SCH-7", v2_table="HL70276")
    if reason:
        out["reasonCode"] = [reason]
    kind = codeable(ctx, sch.field(8).repetition(1), "SCH-8", v2_table="HL70277")
    if kind:
        out["appointmentType"] = kind
    tq1 = next((seg for seg in resources if seg.name == "TQ1"), None)
    starts = [(sch.get(11, 1, 4), "SCH-11.4")]
    ends = [(sch.get(11, 1, 5), "SCH-11.5")]
    if tq1 is not None:
        starts.append((tq1.get(7), "TQ1-7"))
        ends.append((tq1.get(8), "TQ1-8"))
    duration = _minutes(sch.get(9), sch.get(10, 1, 1))
    for seg in resources:
        n = _RESOURCE_START.get(seg.name)
        if n is not None:
            starts.append((seg.get(n), f"{seg.name}-{n}"))
        if duration is None and seg.name == "AIS":
            duration = _minutes(seg.get(7), seg.get(8, 1, 1))
    start = next((instant(ctx, text, path) for text, path in starts if text), None)
    end = next((instant(ctx, text, path) for text, path in ends if text), None)
    if start and not end and duration:
        moment = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        end = (moment + dt.timedelta(minutes=duration)).isoformat()
    if start and end:  # R4 app-2: both or neither
        out["start"], out["end"] = start, end
    elif start or end:
        ctx.issue("SCH-11", "start without end or duration (or end without start): times left out")
    if duration:
        out["minutesDuration"] = duration
    if "start" not in out and out["status"] not in ("proposed", "cancelled", "waitlist"):
        ctx.issue("SCH-11", "no start time: status set to proposed")
        out["status"] = "proposed"
    participants: list[dict[str, Any]] = []
    if patient_ref:
        participants.append({"actor": {"reference": patient_ref}, "status": "accepted"})
    for seg in resources:
        if seg.name == "AIP":
            ref = practitioner(ctx, seg.field(3).repetition(1), "AIP-3")
            if ref:
                participants.append({"actor": ref, "status": "accepted"})
        elif seg.name in ("AIL", "AIG"):
            text = " ".join(x for x in (seg.get(3, 1, 1), seg.get(3, 1, 2), seg.get(3, 1, 4)) if x)
            if text:
                participants.append({"actor": {"display": text}, "status": "accepted"})
    if not participants:
        ctx.issue("SCH", "no participant (PID, AIP, AIL or AIG): appointment skipped")
        return None
    out["participant"] = participants
    texts = [n.get(3) for n in notes if n.get(3)]
    if texts:
        out["comment"] = "\n".join(texts)
    ident = filler or idents[0]
    return ctx.put(
        out,
        f"Appointment|{ident['system']}|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )


def _minutes(amount: str, unit: str) -> int | None:
    try:
        value = float(amount)
    except ValueError:
        return None
    factor = _MINUTES.get(unit.upper(), 1) if unit else 1
    minutes = round(value * factor)
    return minutes if minutes > 0 else None


# TXA-17 document completion status (HL7 Table 0271) -> DocumentReference.docStatus
_DOC_STATUS = MappingProxyType({"AU": "final", "LA": "final", "DO": "preliminary", "DI": "preliminary",
               "IP": "preliminary", "IN": "preliminary", "PA": "preliminary"})  # fmt: skip
# TXA-19 document availability status (HL7 Table 0273) -> DocumentReference.status
_STATUS = MappingProxyType(
    {"AV": "current", "UN": "current", "OB": "superseded", "CA": "entered-in-error"}
)


def document_reference(
    ctx: MapContext,
    txa: Segment,
    observations: list[Segment],
    patient_ref: str,
    encounter_ref: str | None,
    patient_key: str,
) -> str | None:
    """TXA + OBX (text or ED) -> DocumentReference with the content as an attachment.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    unique = entity_identifier(ctx, txa.field(12).repetition(1), "TXA-12")
    ident = unique or derived_identifier(
        "document", patient_key, txa.get(2), txa.get(4) or txa.get(6)
    )
    out: dict[str, Any] = {"resourceType": "DocumentReference", "masterIdentifier": ident}
    out["status"] = _STATUS.get(txa.get(19), "current")
    doc_status = _DOC_STATUS.get(txa.get(17))
    if doc_status:
        out["docStatus"] = doc_status
    kind = codeable(ctx, txa.field(2).repetition(1), "TXA-2", v2_table="HL70270")
    if kind:
        out["type"] = kind
    out["subject"] = {"reference": patient_ref}
    when = instant(ctx, txa.get(4) or txa.get(6), "TXA-4")
    if when:
        out["date"] = when
    authors = [
        ref
        for i, rep in enumerate(txa.field(9).repetitions, 1)
        if (ref := practitioner(ctx, rep, f"TXA-9({i})"))
    ]
    if authors:
        out["author"] = authors
    authenticator = practitioner(ctx, txa.field(22).repetition(1), "TXA-22")
    if authenticator:
        out["authenticator"] = authenticator
    content = _attachment(ctx, observations, txa)
    if content is None:
        ctx.issue("OBX-5", "no document content in OBX: document skipped")
        return None
    out["content"] = [{"attachment": content}]
    if encounter_ref:
        out["context"] = {"encounter": [{"reference": encounter_ref}]}
    out["identifier"] = [
        {**ident, "type": {"coding": [{"system": v2_table_system("0203"), "code": "FILL"}]}}
    ]
    return ctx.put(
        out,
        f"DocumentReference|{ident['system']}|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )


def _attachment(
    ctx: MapContext, observations: list[Segment], txa: Segment
) -> dict[str, Any] | None:
    text_lines: list[str] = []
    for i, obx in enumerate(observations, 1):
        kind = obx.get(2).upper()
        if kind in ("ED", "RP") and obx.get(5, 1, 5):
            data = obx.get(5, 1, 5)
            if obx.get(5, 1, 4).upper() != "BASE64":
                data = base64.b64encode(data.encode("utf-8")).decode("ascii")
            else:
                try:
                    base64.b64decode(data, validate=True)
                except ValueError:
                    ctx.issue(f"OBX[{i}]-5.5", "ED data is not valid base64: kept as text")
                    data = base64.b64encode(data.encode("utf-8")).decode("ascii")
            major, minor = obx.get(5, 1, 2).lower(), obx.get(5, 1, 3).lower()
            mime = (
                f"{'application' if major in ('ap', 'application') else major}/{minor}"
                if major and minor
                else "application/octet-stream"
            )
            attachment = {"contentType": mime, "data": data}
            if title := _title(txa):
                attachment["title"] = title
            return attachment
        text_lines.extend(r.get(1) for r in obx.field(5).repetitions)
    if not "".join(text_lines).strip():
        return None
    attachment = {
        "contentType": "text/plain; charset=utf-8",
        "data": base64.b64encode("\n".join(text_lines).encode("utf-8")).decode("ascii"),
    }
    if title := _title(txa):
        attachment["title"] = title
    return attachment


def _title(txa: Segment) -> str:
    """TXA-25 document title (v2.6+), else the text of the document type (TXA-2.2)."""
    return txa.get(25) or txa.get(2, 1, 2)
