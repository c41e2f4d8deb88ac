"""Message maps: one HL7 v2 message -> one FHIR R4 transaction Bundle.

Implements the message maps of the HL7 V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ):
ADT_A01 (A01, A04, A08, A13), ADT_A02, ADT_A03, ADT_A05 (A05, A28, A31), ADT_A09 (A11),
ADT_A39 (A40 merge), ORU_R01, VXU_V04, ORM_O01, OML_O21, SIU_S12 (S12-S15) and MDM_T02.
The Bundle is a ``transaction`` of conditional writes, so a repeated or corrected message
updates what the first one wrote: ``PUT Patient?identifier=system|value`` for ADT, create-if-
missing (``ifNoneExist``) for the patient and visit named by other messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from cmio.interfaces.hl7v2.mapping.clinical import allergy, condition, coverage
from cmio.interfaces.hl7v2.mapping.context import (
    MapContext,
    MappingError,
    MappingOptions,
    MappingResult,
    Merge,
    identifier_query,
)
from cmio.interfaces.hl7v2.mapping.datatypes import identifier
from cmio.interfaces.hl7v2.mapping.documents import appointment, document_reference
from cmio.interfaces.hl7v2.mapping.header import message_header_and_provenance
from cmio.interfaces.hl7v2.mapping.orders import immunization, service_request
from cmio.interfaces.hl7v2.mapping.patient import (
    encounter,
    patient,
    patient_identifier,
)
from cmio.interfaces.hl7v2.mapping.results import (
    map_order_group,
    order_groups,
    standalone_observations,
)
from cmio.interfaces.hl7v2.message import Message, Segment
from cmio.interfaces.hl7v2.parser import SUPPORTED_VERSIONS

__all__ = ["SUPPORTED", "map_message", "patient_key"]

_ADT_EVENTS = ("A01", "A02", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31", "A40")
SUPPORTED = (
    *(f"ADT^{e}" for e in _ADT_EVENTS),
    "ORU^R01",
    "VXU^V04",
    "ORM^O01",
    "OML^O21",
    "SIU^S12",
    "SIU^S13",
    "SIU^S14",
    "SIU^S15",
    "MDM^T02",
)
"""The message types (``code^event``) :func:`map_message` maps."""


def patient_key(message: Message, options: MappingOptions | None = None) -> str | None:
    """``system|value`` of the message's patient (PID-3 MR identifier), for per-patient order.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    pid = message.segment("PID")
    if pid is None:
        return None
    try:
        ident = patient_identifier(MapContext(message, options or MappingOptions()), pid)
    except MappingError:
        return None
    return f"{ident['system']}|{ident['value']}"


class _Subject:
    """The patient and visit references shared by the resources of one message."""

    def __init__(self, patient_ref: str, key: str, encounter_ref: str | None) -> None:
        self.patient = patient_ref
        self.key = key
        self.encounter = encounter_ref


def _subject(ctx: MapContext, update: bool, event: str = "") -> _Subject:
    pid = ctx.message.segment("PID")
    if pid is None:
        raise MappingError("the message has no PID segment", "PID")
    ident = patient_identifier(ctx, pid)
    resource = patient(ctx, pid, ctx.message.segments("NK1"))
    query = identifier_query(ident["system"], ident["value"])
    if update:
        _keep_links(ctx, resource, ident)
    write = ctx.put if update else ctx.create
    ref = write(resource, "Patient", query)
    key = f"{ident['system']}|{ident['value']}"
    ctx.patient_key = key
    encounter_ref = None
    pv1 = ctx.message.segment("PV1")
    if pv1 is not None and pv1.get(19):
        mapped = encounter(ctx, pv1, ref, event if update else "", locations=update)
        if mapped is not None:
            resource, visit = mapped
            q = identifier_query(visit["system"], visit["value"])
            encounter_ref = write(resource, "Encounter", q)
    return _Subject(ref, key, encounter_ref)


def _keep_links(ctx: MapContext, resource: dict[str, Any], ident: dict[str, Any]) -> None:
    """Carry the stored patient's links (an A40 merge's) into the replacing Patient.

    FHIR R4 Patient.link (https://hl7.org/fhir/R4/patient.html#links): a patient
    ``replaced-by`` another stays inactive.
    """
    lookup = ctx.options.patient_links
    if lookup is None:
        return
    links = [copy.deepcopy(dict(link)) for link in lookup(ident["system"], ident["value"])]
    if links:
        resource["link"] = links
        if any(link.get("type") == "replaced-by" for link in links):
            resource["active"] = False


def _update(ctx: MapContext, adt: bool) -> bool:
    mode = ctx.options.update_patient
    return mode == "always" or (mode == "adt" and adt)


def _adt(ctx: MapContext, event: str) -> Merge | None:
    subject = _subject(ctx, _update(ctx, True), event)
    for i, al1 in enumerate(ctx.message.segments("AL1"), 1):
        allergy(ctx, al1, i, subject.patient, subject.key)
    for i, dg1 in enumerate(ctx.message.segments("DG1"), 1):
        condition(ctx, dg1, i, subject.patient, subject.encounter, subject.key)
    for i, in1 in enumerate(ctx.message.segments("IN1"), 1):
        coverage(ctx, in1, i, subject.patient, subject.key, _update(ctx, True))
    visit_key = f"{subject.key}~{ctx.message.value('PV1-19')}"
    standalone_observations(
        ctx, ctx.message.segments(), subject.patient, subject.encounter, visit_key
    )
    if event != "A40":
        return None
    mrg = ctx.message.segment("MRG")
    prior = identifier(ctx, mrg.field(1).repetition(1), "MRG-1") if mrg is not None else None
    if prior is None:
        raise MappingError("ADT^A40 without a prior patient identifier (MRG-1)", "MRG-1")
    surviving = subject.key.split("|", 1)
    return Merge((surviving[0], surviving[1]), (prior["system"], prior["value"]))


def _oru(ctx: MapContext, event: str) -> None:
    subject = _subject(ctx, _update(ctx, False))
    for group in order_groups(ctx.message.segments()):
        map_order_group(ctx, group, subject.patient, subject.encounter, subject.key)


def _vxu(ctx: MapContext, event: str) -> None:
    subject = _subject(ctx, _update(ctx, False))
    orc: Segment | None = None
    current: list[Any] | None = None  # [orc, rxa, rxr, [obx...]]
    groups: list[list[Any]] = []
    for seg in ctx.message:
        if seg.name == "ORC":
            orc = seg
        elif seg.name == "RXA":
            current = [orc, seg, None, []]
            groups.append(current)
            orc = None
        elif current is not None and seg.name == "RXR" and current[2] is None:
            current[2] = seg
        elif current is not None and seg.name == "OBX":
            current[3].append(seg)
    if not groups:
        raise MappingError("VXU without an RXA segment", "RXA")
    for i, in1 in enumerate(ctx.message.segments("IN1"), 1):
        coverage(ctx, in1, i, subject.patient, subject.key, _update(ctx, False))
    for i, (g_orc, rxa, rxr, obx) in enumerate(groups, 1):
        immunization(ctx, g_orc, rxa, rxr, obx, i, subject.patient, subject.encounter, subject.key)


def _orders(ctx: MapContext, event: str) -> None:
    subject = _subject(ctx, _update(ctx, False))
    groups: list[tuple[Segment | None, Segment | None, list[Segment]]] = []
    for seg in ctx.message:
        if seg.name == "ORC":
            groups.append((seg, None, []))
        elif seg.name == "OBR":
            if groups and groups[-1][1] is None and groups[-1][0] is not None:
                groups[-1] = (groups[-1][0], seg, groups[-1][2])
            else:
                groups.append((None, seg, []))
        elif seg.name == "NTE" and groups:
            groups[-1][2].append(seg)
    if not groups:
        raise MappingError(f"{ctx.message.message_type.code} without an ORC segment", "ORC")
    for i, (orc, obr, notes) in enumerate(groups, 1):
        service_request(ctx, orc, obr, notes, i, subject.patient, subject.encounter, subject.key)


def _siu(ctx: MapContext, event: str) -> None:
    sch = ctx.message.segment("SCH")
    if sch is None:
        raise MappingError("SIU without an SCH segment", "SCH")
    patient_ref = None
    if ctx.message.segment("PID") is not None:
        patient_ref = _subject(ctx, _update(ctx, False)).patient
    resources = [s for s in ctx.message if s.name in ("TQ1", "AIS", "AIG", "AIL", "AIP")]
    notes: list[Segment] = []
    for seg in ctx.message:
        if seg.name == "NTE":
            notes.append(seg)
        elif seg.name in ("PID", "RGS"):
            break
    appointment(ctx, sch, resources, notes, event, patient_ref)


def _mdm(ctx: MapContext, event: str) -> None:
    subject = _subject(ctx, _update(ctx, False))
    txa = ctx.message.segment("TXA")
    if txa is None:
        raise MappingError("MDM without a TXA segment", "TXA")
    document_reference(
        ctx, txa, ctx.message.segments("OBX"), subject.patient, subject.encounter, subject.key
    )


_SUBJECT = ("MSH", "PID", "NK1", "PV1")
_USED = MappingProxyType(
    {
        "ADT": frozenset((*_SUBJECT, "AL1", "DG1", "IN1", "MRG", "OBX")),
        "ORU": frozenset((*_SUBJECT, "ORC", "OBR", "OBX", "NTE", "SPM")),
        "VXU": frozenset((*_SUBJECT, "ORC", "RXA", "RXR", "OBX", "IN1")),
        "ORM": frozenset((*_SUBJECT, "ORC", "OBR", "NTE")),
        "OML": frozenset((*_SUBJECT, "ORC", "OBR", "NTE")),
        "SIU": frozenset((*_SUBJECT, "SCH", "TQ1", "NTE", "RGS", "AIS", "AIG", "AIL", "AIP")),
        "MDM": frozenset((*_SUBJECT, "TXA", "OBX")),
    }
)
"""The segments each message map reads; the others are listed in ``ignored_segments``."""

_HANDLERS: Mapping[str, Callable[[MapContext, str], Merge | None]] = {
    "ADT": _adt,
    "ORU": _oru,
    "VXU": _vxu,
    "ORM": _orders,
    "OML": _orders,
    "SIU": _siu,
    "MDM": _mdm,
}


def map_message(
    message: Message, options: MappingOptions | Mapping[str, Any] | None = None
) -> MappingResult:
    """Map one parsed message to a FHIR R4 transaction Bundle (HL7 V2-to-FHIR IG).

    Args:
        message: the parsed message (:func:`cmio.interfaces.hl7v2.parse`).
        options: :class:`MappingOptions`, or a channel's ``mapping:`` dict.

    Returns:
        The Bundle, the codes kept unmapped, issues, the patient key and, for A40, the merge.

    Raises:
        MappingError: the message type is not mapped, or the message lacks what the map
            needs (a PID with an identifier, ...), naming the v2 element. See
            https://build.fhir.org/ig/HL7/v2-to-fhir/ (message maps).
    """
    opts = options if isinstance(options, MappingOptions) else MappingOptions.from_dict(options)
    mtype = message.message_type
    name = f"{mtype.code}^{mtype.event}"
    if name not in SUPPORTED:
        raise MappingError(
            f"message type {name} is not mapped (mapped: {', '.join(SUPPORTED)})", "MSH-9"
        )
    ctx = MapContext(message, opts)
    if message.version not in SUPPORTED_VERSIONS:
        ctx.issue("MSH-12", f"version {message.version!r} is outside 2.3-2.8.2; mapped as those")
    merge = _HANDLERS[mtype.code](ctx, mtype.event)
    used = _USED[mtype.code]
    if opts.provenance:
        message_header_and_provenance(ctx)
        used = used | {"EVN"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": ctx.entries}
    return MappingResult(
        bundle=bundle,
        unmapped=ctx.unmapped,
        issues=ctx.issues,
        patient_key=ctx.patient_key,
        message_type=mtype,
        merge=merge,
        ignored_segments=sorted({n for n in message.names if n not in used}),
    )
