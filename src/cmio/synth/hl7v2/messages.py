"""HL7 v2.5.1 segment and message builders: ADT^A01/A03/A04/A08, ORU^R01, VXU^V04.

Field placement is the reverse of the HL7 V2-to-FHIR IG maps (message maps ADT_A01,
ORU_R01, VXU_V04; segment maps MSH, EVN, PID, PV1, IN1, ORC, OBR, OBX, RXA, RXR):
https://build.fhir.org/ig/HL7/v2-to-fhir/ , base standard https://v2plus.hl7.org/2021Jan/index.html .
Every builder returns segment text without the ``\\r`` terminator; :func:`message`
joins segments into one ``\\r``-terminated message.
"""

from __future__ import annotations

from datetime import datetime

from cmio.synth.hl7v2.encode import Encoded, comp, escape, number, rep, segment, sub, ts
from cmio.synth.hl7v2.records import (
    Address,
    CodedValue,
    CoverageRecord,
    Header,
    Immunization,
    LabReport,
    LabResult,
    PatientRecord,
    Phone,
    PractitionerRecord,
    Quirks,
    Visit,
)

__all__ = [
    "VERSION",
    "adt_message",
    "evn",
    "in1",
    "message",
    "msh",
    "oru_message",
    "pid",
    "pv1",
    "vxu_message",
    "xcn",
]

VERSION = "2.5.1"
NPI_AUTHORITY = sub("NPI", "2.16.840.1.113883.4.6", "ISO")
SSA_AUTHORITY = sub("SSA", "2.16.840.1.113883.4.1", "ISO")


def _gap(n: int) -> list[str | None]:
    return [None] * n


def message(segments: list[str]) -> str:
    """Join segments into one message, each ended by ``\\r`` (see https://v2plus.hl7.org/2021Jan/index.html)."""
    return "".join(s + "\r" for s in segments)


def msh(header: Header, quirks: Quirks) -> str:
    """MSH segment: MSH-9 code^event^structure, MSH-11 P, MSH-12 2.5.1.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (MSH[MessageHeader]).
    """
    return segment(
        "MSH",
        header.sending_application,
        header.sending_facility,
        header.receiving_application,
        header.receiving_facility,
        ts(header.when),
        None,
        comp(header.code, header.event, header.structure),
        header.control_id,
        "P",
        VERSION,
        None,
        None,
        "AL" if quirks.pad_trailing else None,
        "NE" if quirks.pad_trailing else None,
        pad_to=21 if quirks.pad_trailing else 0,
    )


def evn(event: str, recorded: datetime, occurred: datetime) -> str:
    """EVN segment: EVN-1 event type, EVN-2 recorded, EVN-6 event occurred.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (EVN[Provenance]).
    """
    return segment("EVN", event, ts(recorded), None, None, None, ts(occurred))


def xcn(person: PractitionerRecord | None) -> Encoded:
    """XCN for a clinician: NPI in XCN.1, authority NPI in XCN.9, type NPI in XCN.13.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (XCN[Practitioner]).
    """
    if person is None:
        return Encoded("")
    given = [*person.given, "", ""]
    return comp(
        person.npi,
        person.family,
        given[0],
        given[1],
        None,
        None,
        person.degree,
        None,
        NPI_AUTHORITY,
        "L",
        None,
        None,
        "NPI",
        *([None] * 7),
        person.degree,
    )


def _xad(address: Address) -> Encoded:
    lines = [*address.lines, "", ""]
    return comp(
        lines[0],
        lines[1],
        address.city,
        address.state,
        address.postal_code,
        address.country,
        address.use,
    )


def _xtn(phone: Phone) -> Encoded:
    return comp(phone.number, phone.use, phone.equipment)


def _cwe(value: CodedValue | None) -> Encoded:
    return comp(value.code, value.display, value.system) if value else Encoded("")


def pid(patient: PatientRecord, quirks: Quirks) -> str:
    """PID segment: MRN (CX, type MR) first in PID-3, SSN repeated or in PID-19, names, ...

    Args:
        patient: the patient.
        quirks: the sender habits for this message (``old_address``/``old_phone``
            replace the current ones in messages sent before an A08 update).

    Returns:
        The segment. See https://build.fhir.org/ig/HL7/v2-to-fhir/ (PID[Patient]).
    """
    authority = sub(
        patient.mrn_authority, patient.mrn_system, "URI" if patient.mrn_system else None
    )
    identifiers = [comp(patient.mrn, None, None, authority, "MR")]
    if patient.ssn and not quirks.ssn_in_pid19:
        identifiers.append(comp(patient.ssn, None, None, SSA_AUTHORITY, "SS"))
    given = [*patient.given, ""]
    addresses = list(patient.addresses)
    if quirks.old_address is not None:
        addresses[:1] = [quirks.old_address]
    phones = list(patient.phones)
    if quirks.old_phone is not None:
        phones[:1] = [quirks.old_phone]
    if quirks.extra_phone is not None:
        phones.append(quirks.extra_phone)
    home = [p for p in phones if p.use != "WPN"]
    work = [p for p in phones if p.use == "WPN"]
    return segment(
        "PID",
        "1",
        None,
        rep(*identifiers),
        None,
        comp(patient.family, given[0], " ".join(given[1:]).strip() or None, None, None, None, "L"),
        None,
        patient.birth_date.replace("-", ""),
        patient.sex,
        None,
        _cwe(patient.race),
        rep(*(_xad(a) for a in addresses)),
        None,
        rep(*(_xtn(p) for p in home)),
        rep(*(_xtn(p) for p in work)),
        None,
        comp(patient.marital_status, None, "HL70002") if patient.marital_status else None,
        None,
        None,
        patient.ssn if quirks.ssn_in_pid19 else None,
        None,
        None,
        _cwe(patient.ethnicity),
        *([None] * 6),
        ts(datetime.fromisoformat(patient.deceased)) if patient.deceased else None,
        "Y" if patient.deceased else None,
        pad_to=30 if quirks.pad_trailing else 0,
    )


def pv1(visit: Visit, quirks: Quirks, discharge: bool = False) -> str:
    """PV1 segment: class (I/O/E), location (PL), attending (XCN/NPI), visit number (CX, VN).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (PV1[Encounter]).
    """
    place = visit.place
    location = (
        comp(
            place.point_of_care,
            visit.room,
            visit.bed,
            sub(place.facility),
            *([None] * 4),
            place.description,
        )
        if place
        else None
    )
    fields: list[str | None] = [None] * 45
    fields[0] = "1"
    fields[1] = visit.patient_class
    fields[2] = location
    fields[3] = visit.admission_type or None
    fields[6] = xcn(visit.attending)
    fields[9] = visit.hospital_service or None
    fields[13] = visit.admit_source or None
    fields[18] = comp(visit.number, None, None, sub(visit.authority), "VN")
    if discharge and visit.discharge_disposition:
        fields[35] = _cwe(visit.discharge_disposition)
    fields[43] = ts(visit.start)
    if discharge and visit.end is not None:
        fields[44] = ts(visit.end)
    return segment("PV1", *fields, pad_to=52 if quirks.pad_trailing else 0)


def in1(index: int, coverage: CoverageRecord, patient: PatientRecord) -> str:
    """IN1 segment: plan, payer, effective dates, insured relationship, member id.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (IN1[Coverage]).
    """
    fields: list[str | None] = [None] * 49
    fields[0] = str(index)
    fields[1] = comp(coverage.plan_code, coverage.plan_name, "L") if coverage.plan_code else None
    fields[2] = comp(coverage.payer_id)
    fields[3] = comp(coverage.payer_name)
    fields[11] = coverage.start.replace("-", "") or None
    fields[12] = coverage.end.replace("-", "") or None
    if coverage.relationship == "SEL":
        fields[15] = comp(patient.family, *patient.given[:1])
    fields[16] = comp(coverage.relationship, None, "HL70063")
    fields[35] = coverage.member_id
    fields[48] = comp(coverage.member_id, None, None, None, "MB")
    return segment("IN1", *fields)


def _z(quirks: Quirks) -> list[str]:
    return [segment("ZPI", *quirks.z_segment)] if quirks.z_segment else []


def adt_message(
    header: Header,
    patient: PatientRecord,
    visit: Visit,
    quirks: Quirks,
    pid_segment: str | None = None,
) -> list[str]:
    """ADT^A01/A03/A04/A08 (ADT_A01 or ADT_A03): MSH EVN PID PV1 [DG1...] [IN1...] [ZPI].

    DG1-6 is A (admitting) on A01, F (final) on A03, W (working) otherwise.
    ``pid_segment``, when given, is a PID already built by :func:`pid` for these quirks.

    Returns:
        The segments. See https://build.fhir.org/ig/HL7/v2-to-fhir/ (ADT_A01 message map).
    """
    discharge = header.event == "A03"
    occurred = visit.start if header.event in ("A01", "A04") else header.when
    if discharge and visit.end is not None:
        occurred = visit.end
    segments = [
        msh(header, quirks),
        evn(header.event, header.when, occurred),
        pid_segment or pid(patient, quirks),
        pv1(visit, quirks, discharge=discharge),
    ]
    role = {"A01": "A", "A03": "F"}.get(header.event, "W")
    segments += [
        segment("DG1", str(i + 1), None, _cwe(dx), dx.display, None, role)
        for i, dx in enumerate(visit.diagnoses)
    ]
    if header.event != "A03":
        segments += [in1(i + 1, c, patient) for i, c in enumerate(patient.coverages)]
    return segments + _z(quirks)


def _obx(index: int, result: LabResult, lab: str) -> str:
    units: str | None = None
    if isinstance(result.value, CodedValue):
        kind, value = "CWE", _cwe(result.value)
    elif isinstance(result.value, str):
        kind, value = "ST", Encoded(escape(result.value))
    else:
        kind, value = "NM", Encoded(number(result.value))
        units = comp(result.unit, result.unit, "UCUM") if result.unit else None
    when = ts(result.effective) if result.effective else None
    fields: list[str | None] = [None] * 23
    fields[0] = str(index)
    fields[1] = kind
    fields[2] = _cwe(result.code)
    fields[4] = value
    fields[5] = units
    fields[6] = result.reference_range or None
    fields[7] = result.interpretation or None
    fields[10] = result.status
    fields[13] = when
    fields[22] = comp(lab) if lab else None
    return segment("OBX", *fields)


def oru_message(
    header: Header,
    patient: PatientRecord,
    visit: Visit | None,
    report: LabReport,
    quirks: Quirks,
    pid_segment: str | None = None,
) -> list[str]:
    """ORU^R01: MSH PID [PV1] ORC OBR [NTE] OBX... (NM with UCUM units, or CWE).

    Returns:
        The segments. See https://build.fhir.org/ig/HL7/v2-to-fhir/ (ORU_R01 message map).
    """
    ordering = xcn(report.ordering)
    placer = comp(report.placer, "RB_EHR")
    filler = comp(report.filler, "RB_LAB")
    segments = [msh(header, quirks), pid_segment or pid(patient, quirks)]
    if visit is not None:
        segments.append(pv1(visit, quirks))
    segments.append(
        segment(
            "ORC", "RE", placer, filler, None, "CM", *_gap(3), ts(report.issued), *_gap(2), ordering
        )
    )
    obr: list[str | None] = [None] * 25
    obr[0] = "1"
    obr[1] = placer
    obr[2] = filler
    obr[3] = _cwe(report.code)
    obr[6] = ts(report.effective)
    obr[15] = ordering
    obr[21] = ts(report.issued)
    obr[23] = "LAB"
    obr[24] = report.status
    segments.append(segment("OBR", *obr))
    if quirks.note:
        segments.append(segment("NTE", "1", "L", quirks.note))
    segments += [_obx(i + 1, r, report.performing_lab) for i, r in enumerate(report.results)]
    return segments + _z(quirks)


def vxu_message(
    header: Header,
    patient: PatientRecord,
    visit: Visit | None,
    shot: Immunization,
    quirks: Quirks,
    pid_segment: str | None = None,
) -> list[str]:
    """VXU^V04: MSH PID [PV1] [IN1...] ORC RXA RXR [ZPI].

    Returns:
        The segments. See https://build.fhir.org/ig/HL7/v2-to-fhir/ (VXU_V04 message map).
    """
    segments = [msh(header, quirks), pid_segment or pid(patient, quirks)]
    if visit is not None:
        segments.append(pv1(visit, quirks))
    segments += [in1(i + 1, c, patient) for i, c in enumerate(patient.coverages)]
    giver = xcn(shot.administering)
    placer, filler = comp(shot.placer, "RB_EHR"), comp(shot.filler, "RB_IMM")
    ordering = xcn(visit.attending) if visit is not None else None
    segments.append(
        segment("ORC", "RE", placer, filler, *_gap(5), ts(shot.recorded), *_gap(2), ordering)
    )
    source = (
        comp("01", "Historical information - source unspecified", "NIP001")
        if shot.historical
        else comp("00", "New immunization record", "NIP001")
    )
    rxa: list[str | None] = [None] * 22
    rxa[0] = "0"
    rxa[1] = "1"
    rxa[2] = ts(shot.when)
    rxa[3] = ts(shot.when)
    rxa[4] = _cwe(shot.vaccine)
    rxa[5] = shot.amount
    rxa[6] = comp(shot.unit, shot.unit, "UCUM") if shot.unit else None
    rxa[8] = source
    rxa[9] = giver
    rxa[10] = comp(None, None, None, sub(shot.facility)) if shot.facility else None
    rxa[14] = shot.lot or None
    rxa[19] = "CP"
    rxa[20] = "A"
    rxa[21] = ts(shot.recorded)
    segments.append(segment("RXA", *rxa))
    segments.append(segment("RXR", _cwe(shot.route), _cwe(shot.site)))
    return segments + _z(quirks)
