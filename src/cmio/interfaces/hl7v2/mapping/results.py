"""ORU^R01 order groups (ORC, OBR, OBX, NTE, SPM) to DiagnosticReport, Observation, Specimen.

Message map ORU_R01 and segment maps OBR[DiagnosticReport], OBX[Observation], SPM[Specimen],
OBR[Specimen] of the HL7 V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
The report is matched by its filler order number (OBR-3, else ORC-3), else its placer order
number; observations by OBX-21, else report + OBX-3 + OBX-4; specimens by SPM-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, identifier_query
from cmio.interfaces.hl7v2.mapping.datatypes import (
    clean_code,
    codeable,
    datetime,
    entity_identifier,
    instant,
    practitioner,
    v2_table_system,
    vocab,
)
from cmio.interfaces.hl7v2.mapping.obx import mime_type, observation_value
from cmio.interfaces.hl7v2.mapping.patient import derived_identifier
from cmio.interfaces.hl7v2.message import Repetition, Segment

__all__ = [
    "OrderGroup",
    "map_order_group",
    "order_groups",
    "standalone_observations",
]


@dataclass
class OrderGroup:
    """One ORDER_OBSERVATION group: [ORC] OBR [NTE] {OBX [NTE]} {SPM [OBX]}.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """

    orc: Segment | None
    obr: Segment
    index: int
    notes: list[Segment] = field(default_factory=list)
    observations: list[tuple[Segment, list[Segment], int]] = field(default_factory=list)
    """(OBX, its NTEs, index of the SPM it follows or -1 for the order's own results)."""
    specimens: list[Segment] = field(default_factory=list)


def order_groups(segments: list[Segment]) -> list[OrderGroup]:
    """Split the segments after the patient part into order groups (ORC/OBR start one).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    groups: list[OrderGroup] = []
    pending_orc: Segment | None = None
    current: OrderGroup | None = None
    for seg in segments:
        name = seg.name
        if name == "ORC":
            pending_orc = seg
            current = None
        elif name == "OBR":
            current = OrderGroup(pending_orc, seg, len(groups) + 1)
            groups.append(current)
            pending_orc = None
        elif current is None:
            continue
        elif name == "OBX":  # after an SPM: an observation about that specimen
            current.observations.append((seg, [], len(current.specimens) - 1))
        elif name == "NTE":
            if current.observations:
                current.observations[-1][1].append(seg)
            else:
                current.notes.append(seg)
        elif name == "SPM":
            current.specimens.append(seg)
    return groups


def _order_identifiers(group: OrderGroup) -> tuple[Repetition, Repetition]:
    placer = group.obr.field(2).repetition(1)
    filler = group.obr.field(3).repetition(1)
    if group.orc is not None:
        placer = placer or group.orc.field(2).repetition(1)
        filler = filler or group.orc.field(3).repetition(1)
    return placer, filler


def _typed(ident: dict[str, Any], code: str) -> dict[str, Any]:
    return {
        **ident,
        "type": {"coding": [{"system": v2_table_system("0203"), "code": code}]},
    }


def map_order_group(
    ctx: MapContext,
    group: OrderGroup,
    patient_ref: str,
    encounter_ref: str | None,
    patient_key: str,
) -> None:
    """One order group -> DiagnosticReport, its Observations and Specimens (in ``ctx``).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    obr, path = group.obr, f"OBR[{group.index}]"
    placer_rep, filler_rep = _order_identifiers(group)
    placer = entity_identifier(ctx, placer_rep, f"{path}-2")
    filler = entity_identifier(ctx, filler_rep, f"{path}-3")
    code = codeable(ctx, obr.field(4).repetition(1), f"{path}-4")
    if code is None:
        ctx.issue(f"{path}-4", "no universal service identifier; report code is text only")
        code = {"text": "unknown test"}
    key_ident = (
        filler
        or placer
        or derived_identifier("report", patient_key, obr.get(4), obr.get(7), str(group.index))
    )
    key = f"{key_ident['system']}~{key_ident['value']}"
    report: dict[str, Any] = {"resourceType": "DiagnosticReport", "identifier": []}
    if placer:
        report["identifier"].append(_typed(placer, "PLAC"))
    if filler:
        report["identifier"].append(_typed(filler, "FILL"))
    if not report["identifier"]:
        report["identifier"].append(key_ident)
    status_code = obr.get(25)
    status = (
        vocab(ctx, "ResultStatus[Non-Queries]", status_code, f"{path}-25", "HL70123")
        if status_code
        else None
    )
    report["status"] = status or "unknown"
    category = clean_code(obr.get(24))
    if category:
        report["category"] = [{"coding": [{"system": v2_table_system("0074"), "code": category}]}]
    report["code"] = code
    report["subject"] = {"reference": patient_ref}
    if encounter_ref:
        report["encounter"] = {"reference": encounter_ref}
    start, end = datetime(ctx, obr.get(7), f"{path}-7"), datetime(ctx, obr.get(8), f"{path}-8")
    if start and end:
        report["effectivePeriod"] = {"start": start, "end": end}
    elif start:
        report["effectiveDateTime"] = start
    issued = instant(ctx, obr.get(22), f"{path}-22")
    if issued:
        report["issued"] = issued
    interpreter = practitioner(ctx, obr.field(32).repetition(1), f"{path}-32")
    if interpreter:
        report["resultsInterpreter"] = [interpreter]
    notes = [n.get(3) for n in group.notes if n.get(3)]
    if notes:
        report["conclusion"] = "\n".join(notes)
    specimen_refs = [
        _specimen(ctx, spm, f"SPM[{group.index}.{i}]", key, patient_ref)
        for i, spm in enumerate(group.specimens, 1)
    ]
    if not specimen_refs and obr.get(15):
        specimen_refs = [_obr_specimen(ctx, obr, path, key, patient_ref)]
    if specimen_refs:
        report["specimen"] = [{"reference": r} for r in specimen_refs]
    results = []
    seen: dict[str, int] = {}
    for i, (obx, nte, spm) in enumerate(group.observations, 1):
        own = [specimen_refs[spm]] if 0 <= spm < len(specimen_refs) else specimen_refs
        ref = _observation(ctx, obx, nte, f"OBX[{group.index}.{i}]", key, seen, report, own)
        if ref:
            results.append({"reference": ref})
    if results:
        report["result"] = results
    ident = report["identifier"][-1]
    ctx.put(report, f"DiagnosticReport|{key}", identifier_query(ident["system"], ident["value"]))


def _observation(
    ctx: MapContext,
    obx: Segment,
    notes: list[Segment],
    path: str,
    report_key: str,
    seen: dict[str, int],
    report: dict[str, Any],
    specimen_refs: list[str],
) -> str | None:
    """OBX -> Observation (IG map OBX[Observation])."""
    code = codeable(ctx, obx.texts(3), f"{path}-3")
    if obx.get(2) == "ED" and obx.get(5, 1, 5):
        attachment: dict[str, Any] = {"contentType": mime_type(obx), "data": obx.get(5, 1, 5)}
        if code and code.get("text"):
            attachment["title"] = code["text"]
        report.setdefault("presentedForm", []).append(attachment)
        return None
    if code is None:
        ctx.issue(f"{path}-3", "no observation identifier: OBX skipped")
        return None
    sent = entity_identifier(ctx, obx.texts(21), f"{path}-21") if obx.raw_field(21) else None
    natural = f"{report_key}~{obx.get(3)}~{obx.get(4)}"
    seen[natural] = seen.get(natural, 0) + 1
    if seen[natural] > 1:
        natural += f"~{seen[natural]}"
    ident = sent or derived_identifier("observation", natural)
    out: dict[str, Any] = {"resourceType": "Observation", "identifier": [ident]}
    status_code = obx.get(11)
    status = (
        vocab(
            ctx, "ObservationResultStatusCodesInterpretation", status_code, f"{path}-11", "HL70085"
        )
        if status_code
        else None
    )
    out["status"] = status or "unknown"
    out["code"] = code
    out["subject"] = dict(report["subject"])
    if "encounter" in report:
        out["encounter"] = dict(report["encounter"])
    value = observation_value(ctx, obx, path)
    out.update(value)
    if obx.raw_field(8):
        interpretation = [
            c
            for i, rep in enumerate(obx.field(8).repetitions, 1)
            if (c := codeable(ctx, rep, f"{path}-8({i})", "InterpretationCodes", "HL70078"))
        ]
        if interpretation:
            out["interpretation"] = interpretation
    if obx.get(7):
        out["referenceRange"] = [{"text": obx.get(7)}]
    effective = datetime(ctx, obx.get(14), f"{path}-14")
    if effective:
        out["effectiveDateTime"] = effective
    elif "effectiveDateTime" in report:
        out["effectiveDateTime"] = report["effectiveDateTime"]
    if obx.raw_field(19) and (issued := instant(ctx, obx.get(19), f"{path}-19")):
        out["issued"] = issued
    if obx.raw_field(16):
        performers = [
            ref
            for i, rep in enumerate(obx.field(16).repetitions, 1)
            if (ref := practitioner(ctx, rep, f"{path}-16({i})"))
        ]
        if performers:
            out["performer"] = performers
    for key, n in (("method", 17), ("bodySite", 20)):
        if obx.raw_field(n) and (concept := codeable(ctx, obx.texts(n), f"{path}-{n}")):
            out[key] = concept
    if specimen_refs:
        out["specimen"] = {"reference": specimen_refs[0]}
    texts = [n.get(3) for n in notes if n.get(3)]
    if texts:
        out["note"] = [{"text": t} for t in texts]
    return ctx.put(
        out, f"Observation|{ident['value']}", identifier_query(ident["system"], ident["value"])
    )


def standalone_observations(
    ctx: MapContext,
    segments: list[Segment],
    patient_ref: str,
    encounter_ref: str | None,
    key: str,
) -> None:
    """OBX segments outside an order (ADT: height, weight, ...) -> Observations of the patient.

    Matched by patient (and visit) + OBX-3 + OBX-4, so a repeated ADT updates them. See
    https://build.fhir.org/ig/HL7/v2-to-fhir/ (message map ADT_A01, OBX[Observation]).
    """
    context: dict[str, Any] = {"subject": {"reference": patient_ref}}
    if encounter_ref:
        context["encounter"] = {"reference": encounter_ref}
    seen: dict[str, int] = {}
    current: tuple[Segment, list[Segment]] | None = None
    pending: list[tuple[Segment, list[Segment]]] = []
    for seg in segments:
        if seg.name == "OBX":
            current = (seg, [])
            pending.append(current)
        elif seg.name == "NTE" and current is not None:
            current[1].append(seg)
        elif seg.name not in ("OBX", "NTE"):
            current = None
    for index, (obx, notes) in enumerate(pending, 1):
        _observation(ctx, obx, notes, f"OBX[{index}]", key, seen, context, [])


def _specimen(ctx: MapContext, spm: Segment, path: str, report_key: str, patient_ref: str) -> str:
    """SPM -> Specimen (IG map SPM[Specimen])."""
    placer = entity_identifier(ctx, _eip_part(spm.field(2).repetition(1), 1), f"{path}-2.1")
    filler = entity_identifier(ctx, _eip_part(spm.field(2).repetition(1), 2), f"{path}-2.2")
    idents = [i for i in (placer, filler) if i]
    ident = (filler or placer) or derived_identifier("specimen", report_key, spm.get(1) or "1")
    out: dict[str, Any] = {"resourceType": "Specimen", "identifier": idents or [ident]}
    kind = codeable(ctx, spm.field(4).repetition(1), f"{path}-4", v2_table="HL70487")
    if kind:
        out["type"] = kind
    out["subject"] = {"reference": patient_ref}
    collection: dict[str, Any] = {}
    start, end = spm.get(17, 1, 1), spm.get(17, 1, 2)
    if start and end:
        collection["collectedPeriod"] = {
            "start": datetime(ctx, start, f"{path}-17.1"),
            "end": datetime(ctx, end, f"{path}-17.2"),
        }
        collection["collectedPeriod"] = {
            k: v for k, v in collection["collectedPeriod"].items() if v
        }
        if not collection["collectedPeriod"]:  # neither time valid: reported as issues
            del collection["collectedPeriod"]
    elif start and (when := datetime(ctx, start, f"{path}-17")):
        collection["collectedDateTime"] = when
    for key, n, table in (("method", 7, "HL70488"), ("bodySite", 8, "HL70784")):
        concept = codeable(ctx, spm.field(n).repetition(1), f"{path}-{n}", v2_table=table)
        if concept:
            collection[key] = concept
    if collection:
        out["collection"] = collection
    received = datetime(ctx, spm.get(18), f"{path}-18")
    if received:
        out["receivedTime"] = received
    return ctx.put(
        out,
        f"Specimen|{ident['system']}|{ident['value']}",
        identifier_query(ident["system"], ident["value"]),
    )


def _eip_part(rep: Repetition, n: int) -> Repetition:
    """EIP component ``n`` (an EI written as subcomponents) read as an EI."""
    return rep.component(n).as_repetition()


def _obr_specimen(
    ctx: MapContext, obr: Segment, path: str, report_key: str, patient_ref: str
) -> str:
    """OBR-15 (specimen source, v2.3-2.6) -> Specimen (IG map OBR[Specimen])."""
    source = obr.field(15).repetition(1)
    ident = derived_identifier("specimen", report_key, "OBR-15")
    out: dict[str, Any] = {
        "resourceType": "Specimen",
        "identifier": [ident],
        "subject": {"reference": patient_ref},
    }
    kind = codeable(ctx, source.component(1).as_repetition(), f"{path}-15.1", v2_table="HL70070")
    if kind:
        out["type"] = kind
    when = datetime(ctx, obr.get(7), f"{path}-7")
    if when:
        out["collection"] = {"collectedDateTime": when}
    return ctx.put(
        out, f"Specimen|{ident['value']}", identifier_query(ident["system"], ident["value"])
    )
