"""HL7 v2.5.1 feeds from a ``cmio synth`` output folder, in time order.

Events, one message each, ordered by instant (UTC), then kind, then resource id:

* encounter start: ADT^A04 (outpatient, virtual) or ADT^A01 (inpatient, emergency);
* encounter end: ADT^A03 for inpatient and emergency encounters;
* ADT^A08 five minutes into a chosen visit of a deterministic share of patients: an
  address or phone update. Messages sent before it carry the patient's *previous*
  address or phone, so after the A08 the receiver holds the FHIR Patient's values;
* ORU^R01 when a lab DiagnosticReport is issued; VXU^V04 when a vaccine is given.

Quirks are chosen per seed from a hash of (seed, kind, resource id), so they do not
depend on reading order: ZPI Z-segments, trailing empty fields kept, the SSN in PID-19
instead of a second PID-3 repetition, a second (mobile) phone repetition, NTE notes
and ZPI text with ``| ^ & ~ \\`` (escaped ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``).

Output layout (``OUT/``), messages in feed order, segments ended by ``\\r`` and
messages back to back (the next one starts with ``MSH``)::

    adt.hl7    ADT^A01, ADT^A03, ADT^A04, ADT^A08
    oru.hl7    ORU^R01
    vxu.hl7    VXU^V04
    all.hl7    every message
    all.mllp   every message framed for MLLP: 0x0B message 0x1C 0x0D
    manifest.json  counts per message type and the file list

Messages (v2.5.1 abstract syntax, optional parts in brackets)::

    ADT^A01/A04/A08 (ADT_A01)  MSH EVN PID PV1 [DG1...] [IN1...] [ZPI]
    ADT^A03 (ADT_A03)          MSH EVN PID PV1 [DG1...] [ZPI]
    ORU^R01 (ORU_R01)          MSH PID [PV1] ORC OBR [NTE] OBX...
    VXU^V04 (VXU_V04)          MSH PID [PV1] [IN1...] ORC RXA RXR [ZPI]

Conventions: MSH-10 is ``SSS`` (seed mod 1000) + a 9-digit feed sequence number;
MSH-7 lags the event by 0-89 s. PID-3 starts with the MRN as
``value^^^RBH&<mrn system>&URI^MR`` (the system survives the trip back to FHIR).
PV1-19 is a 12-digit visit number derived from the Encounter id (``^^^RBH^VN``), the
same in every message about that encounter; virtual visits are class ``O`` (v2 has
no virtual class). OBR-2/ORC-2 placer and OBR-3/ORC-3 filler numbers derive from the
ServiceRequest and DiagnosticReport ids. OBX-7/OBX-8 come from the Observation's
referenceRange/interpretation, else from adult normal limits. Immunizations without
an encounter are history (RXA-9 ``01``, RXA-6 ``999``), keyed in at the patient's
first visit of the simulated period. DG1 carries the ICD-10-CM (``I10C``) reasons.
ZPI (local): ZPI-1 set id, ZPI-2 portal status, ZPI-3 preferred contact, ZPI-4 note.

Same input and seed, same bytes. Spec: https://v2plus.hl7.org/2021Jan/index.html and
https://build.fhir.org/ig/HL7/v2-to-fhir/ (its maps, read in reverse).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cmio.synth.hl7v2.context import Context, digits, instant_key, load_context
from cmio.synth.hl7v2.encode import mllp_frame
from cmio.synth.hl7v2.messages import adt_message, message, oru_message, vxu_message
from cmio.synth.hl7v2.messages import pid as pid_segment
from cmio.synth.hl7v2.records import (
    Address,
    CodedValue,
    Header,
    Immunization,
    Phone,
    Quirks,
    Visit,
    first_coding,
    parse_instant,
    ref_id,
)

__all__ = [
    "A08_SHARE",
    "NOTES",
    "Z_TEXTS",
    "FeedMessage",
    "FeedSummary",
    "iter_messages",
    "write_feeds",
]

A08_SHARE = 0.2
NOTES = (
    "Specimen slightly hemolyzed | potassium may be falsely elevated",
    "Fasting status: Y^patient-reported",
    "Collected at Riverbend Lab & Pathology draw station",
    "Repeat ordered ~ see prior result",
    "Result copied to \\\\RB-LAB\\outbound queue",
)
Z_TEXTS = (
    "Prefers morning calls | portal user",
    "Interpreter: none^English",
    "Guardian & emergency contact on file",
    "Alias ~ nickname on file",
    "Legacy chart C:\\EHR\\A-Z",
)
_PID_CACHE = 4096
_PRIORITY = {"A04": 0, "A01": 0, "A08": 1, "VXU": 2, "ORU": 3, "A03": 4}
_SOURCES = {"ADT": ("RB_ADT", "RBH"), "ORU": ("RB_LAB", "RBH_LAB"), "VXU": ("RB_IMM", "RBH")}
_ROUTES = {
    "03": "SC",
    "21": "SC",
    "94": "SC",
    "121": "SC",
    "116": "PO",
    "119": "PO",
    "122": "PO",
    "111": "IN",
    "149": "IN",
}
_ROUTE_NAMES = {"IM": "Intramuscular", "SC": "Subcutaneous", "PO": "Oral", "IN": "Intranasal"}


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One rendered message: its type (``ADT^A01``...), control id and ER7 text."""

    kind: str
    control_id: str
    text: str


@dataclass(slots=True)
class FeedSummary:
    """Counts per message type, timing and written files."""

    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        """All messages written."""
        return sum(self.by_type.values())


def _chance(seed: int, *parts: str) -> float:
    text = "\x1f".join((str(seed), *parts)).encode()
    value = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
    return value / 2**64


@dataclass(frozen=True, slots=True)
class _Update:
    when: datetime
    visit_id: str
    old_address: Address | None
    old_phone: Phone | None


def _updates(ctx: Context, seed: int) -> dict[str, _Update]:
    by_patient: dict[str, list[tuple[float, str]]] = {}
    for vid, (pid, _cls, visit) in ctx.visits.items():
        by_patient.setdefault(pid, []).append((instant_key(visit.start), vid))
    updates: dict[str, _Update] = {}
    for pid, visits in by_patient.items():
        if _chance(seed, "a08", pid) >= A08_SHARE:
            continue
        visits.sort()
        vid = visits[1][1] if len(visits) > 1 else visits[0][1]
        patient = ctx.patients[pid]
        roll = _chance(seed, "a08-kind", pid)
        old_address = old_phone = None
        if roll < 0.5 and patient.addresses:
            current = patient.addresses[0]
            number = 100 + int(digits(pid + str(seed), 4))
            unit = ("Apt 2", "Unit B", "Rear Unit #2 & 3", "Apt 4^B")[int(roll * 8)]
            old_address = Address(
                (f"{number} Old Mill Rd", unit),
                current.city,
                current.state,
                current.postal_code,
                current.country,
            )
        else:
            old_phone = Phone(f"614-555-0{digits(pid + str(seed), 3)}", "PRN", "PH")
        updates[pid] = _Update(
            ctx.visits[vid][2].start + timedelta(minutes=5), vid, old_address, old_phone
        )
    return updates


def _quirks(
    ctx: Context, seed: int, kind: str, rid: str, pid: str, before: _Update | None
) -> Quirks:
    patient = ctx.patients[pid]
    extra = None
    if _chance(seed, "mobile", pid) < 0.35:
        extra = Phone(f"614-555-01{digits('m' + pid, 2)}", "PRS", "CP")
    z: tuple[str, ...] = ()
    if not kind.startswith("ORU") and _chance(seed, "z", kind, rid) < 0.3:
        text = Z_TEXTS[int(_chance(seed, "zt", rid) * len(Z_TEXTS))]
        portal = "ACTIVE" if _chance(seed, "portal", pid) < 0.6 else "INACTIVE"
        contact = ("TEXT", "PHONE", "EMAIL", "MAIL")[int(_chance(seed, "contact", pid) * 4)]
        z = ("1", portal, contact, text)
    note = ""
    if kind.startswith("ORU") and _chance(seed, "nte", rid) < 0.25:
        note = NOTES[int(_chance(seed, "ntet", rid) * len(NOTES))]
    return Quirks(
        pad_trailing=_chance(seed, "pad", kind, rid) < 0.25,
        ssn_in_pid19=bool(patient.ssn) and _chance(seed, "pid19", pid) < 0.3,
        extra_phone=extra,
        z_segment=z,
        note=note,
        old_address=before.old_address if before else None,
        old_phone=before.old_phone if before else None,
    )


def _immunization(
    imm: dict[str, Any], ctx: Context, seed: int, entered: datetime | None
) -> Immunization:
    vaccine = first_coding(imm.get("vaccineCode")) or CodedValue(
        "998", "No vaccine administered", "CVX"
    )
    when = parse_instant(imm["occurrenceDateTime"])
    historical = "encounter" not in imm or imm.get("primarySource") is False
    dose = imm.get("doseQuantity", {})
    route_code = first_coding(imm.get("route"))
    route = route_code.code if route_code else _ROUTES.get(vaccine.code, "IM")
    site = None
    if not historical and route in ("IM", "SC"):
        left = _chance(seed, "site", imm["id"]) < 0.5
        site = CodedValue(
            "LD" if left else "RD", "Left Deltoid" if left else "Right Deltoid", "HL70163"
        )
    performer = next((ref_id(p.get("actor")) for p in imm.get("performer", [])), "")
    place = ctx.places.get(ref_id(imm.get("location")))
    return Immunization(
        placer=digits("imm-order:" + imm["id"]),
        filler="I" + digits(imm["id"], 9),
        vaccine=vaccine,
        when=when,
        recorded=parse_instant(imm["recorded"])
        if "recorded" in imm
        else (entered if historical and entered is not None else when),
        historical=historical,
        lot=str(imm.get("lotNumber", "")),
        amount="999" if historical else str(dose.get("value", "0.5")),
        unit="" if historical else str(dose.get("code") or dose.get("unit") or "mL"),
        route=CodedValue(route, _ROUTE_NAMES.get(route, route), "HL70162"),
        site=site,
        administering=ctx.practitioners.get(performer),
        facility=place.facility if place else "",
    )


def iter_messages(source: Path, seed: int = 1) -> Iterator[FeedMessage]:
    """Yield the feed's messages in time order.

    Args:
        source: a ``cmio synth`` NDJSON folder.
        seed: chooses the quirks and A08 updates (same seed, same messages).

    Yields:
        :class:`FeedMessage` per event. See https://v2plus.hl7.org/2021Jan/index.html .
    """
    ctx = load_context(source)
    updates = _updates(ctx, seed)
    events: list[tuple[float, int, str, str, str, Any]] = []
    for vid, (pid, _cls, visit) in ctx.visits.items():
        start_kind = "A01" if visit.patient_class in ("I", "E") else "A04"
        events.append(
            (instant_key(visit.start), _PRIORITY[start_kind], vid, start_kind, pid, visit)
        )
        if visit.patient_class in ("I", "E") and visit.end is not None:
            events.append((instant_key(visit.end), _PRIORITY["A03"], vid, "A03", pid, visit))
    for pid, change in updates.items():
        visit = ctx.visits[change.visit_id][2]
        events.append((instant_key(change.when), _PRIORITY["A08"], pid, "A08", pid, visit))
    for pid, eid, report in ctx.reports:
        events.append(
            (instant_key(report.issued), _PRIORITY["ORU"], report.filler, "ORU", pid, (eid, report))
        )
    first_visit: dict[str, datetime] = {}
    for pid, _cls, seen in ctx.visits.values():
        if pid not in first_visit or instant_key(seen.start) < instant_key(first_visit[pid]):
            first_visit[pid] = seen.start
    for imm in ctx.immunizations:
        pid = ref_id(imm.get("patient"))
        entered = first_visit.get(pid)
        # history is keyed in at the first visit of the simulated period
        shot = _immunization(imm, ctx, seed, entered + timedelta(minutes=10) if entered else None)
        events.append(
            (
                instant_key(shot.recorded),
                _PRIORITY["VXU"],
                imm["id"],
                "VXU",
                ref_id(imm.get("patient")),
                (ref_id(imm.get("encounter")), shot),
            )
        )
    ctx.immunizations.clear()  # now held as compact Immunization records
    events.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
    pids: dict[tuple[object, ...], str] = {}
    for seq, (key, _prio, rid, kind, pid, payload) in enumerate(events, start=1):
        update = updates.get(pid)
        before = update if update is not None and key < instant_key(update.when) else None
        quirks = _quirks(ctx, seed, kind, rid, pid, before)
        patient = ctx.patients[pid]
        pid_key = (pid, quirks.pad_trailing, quirks.ssn_in_pid19, quirks.extra_phone, before)
        pid_text = pids.get(pid_key)
        if pid_text is None:
            pid_text = pids[pid_key] = pid_segment(patient, quirks)
            if len(pids) > _PID_CACHE:
                del pids[next(iter(pids))]  # oldest first: messages of a patient cluster in time
        control = f"{seed % 1000:03d}{seq:09d}"
        lag = timedelta(seconds=int(_chance(seed, "lag", kind, rid) * 90))
        if kind in ("ORU", "VXU"):
            eid, item = payload
            found = ctx.visits.get(eid)
            visit_of: Visit | None = found[2] if found else None
            when = (item.issued if kind == "ORU" else item.recorded) + lag
            app, facility = _SOURCES[kind]
            if kind == "ORU":
                header = Header("ORU", "R01", "ORU_R01", app, facility, when, control)
                segments = oru_message(header, patient, visit_of, item, quirks, pid_text)
            else:
                header = Header("VXU", "V04", "VXU_V04", app, facility, when, control)
                segments = vxu_message(header, patient, visit_of, item, quirks, pid_text)
            yield FeedMessage(f"{kind}^{header.event}", control, message(segments))
            continue
        visit = payload
        base = visit.end if kind == "A03" and visit.end else visit.start
        when = (update.when if kind == "A08" and update else base) + lag
        structure = "ADT_A03" if kind == "A03" else "ADT_A01"
        app, facility = _SOURCES["ADT"]
        header = Header("ADT", kind, structure, app, facility, when, control)
        yield FeedMessage(
            f"ADT^{kind}", control, message(adt_message(header, patient, visit, quirks, pid_text))
        )


def write_feeds(source: Path, out: Path, seed: int = 1) -> FeedSummary:
    """Write the feeds of ``source`` into ``out`` (layout in the module docstring).

    Args:
        source: a ``cmio synth`` NDJSON folder.
        out: output folder (created).
        seed: quirk seed.

    Returns:
        A :class:`FeedSummary`. See https://v2plus.hl7.org/2021Jan/index.html .
    """
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    summary = FeedSummary(files=["adt.hl7", "oru.hl7", "vxu.hl7", "all.hl7", "all.mllp"])
    handles = {name: (out / name).open("wb") for name in summary.files}
    try:
        for msg in iter_messages(source, seed):
            data = msg.text.encode("utf-8")
            handles[msg.kind[:3].lower() + ".hl7"].write(data)
            handles["all.hl7"].write(data)
            handles["all.mllp"].write(mllp_frame(msg.text))
            summary.by_type[msg.kind] = summary.by_type.get(msg.kind, 0) + 1
    finally:
        for handle in handles.values():
            handle.close()
    summary.by_type = dict(sorted(summary.by_type.items()))
    manifest = {
        "version": "2.5.1",
        "seed": seed,
        "messages": summary.by_type,
        "files": summary.files,
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    summary.seconds = time.perf_counter() - started
    return summary
