"""PID, NK1, PV1, AL1 and DG1 to Patient, Encounter, AllergyIntolerance and Condition.

Segment maps PID[Patient], NK1[Patient], PV1[Encounter], AL1[AllergyIntolerance] and
DG1[Condition] of the HL7 V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
Patients are matched by identifier (the MR identifier of PID-3 with its assigning authority),
encounters by visit number (PV1-19), so a repeated or updated message updates, never duplicates.
"""

from __future__ import annotations

from typing import Any

from cmio.interfaces.hl7v2.mapping.context import MapContext, MappingError
from cmio.interfaces.hl7v2.mapping.datatypes import (
    address,
    clean_code,
    codeable,
    contact_point,
    datetime,
    human_name,
    identifier,
    practitioner,
    v2_table_system,
    vocab,
)
from cmio.interfaces.hl7v2.mapping.demographics import race_and_ethnicity
from cmio.interfaces.hl7v2.mapping.locations import encounter_locations
from cmio.interfaces.hl7v2.mapping.vocabulary import VOCABULARY
from cmio.interfaces.hl7v2.message import Segment

__all__ = [
    "derived_identifier",
    "encounter",
    "patient",
    "patient_identifier",
]

_SSN = "http://hl7.org/fhir/sid/us-ssn"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_DERIVED = "urn:cmio:v2:"


def derived_identifier(kind: str, *parts: str) -> dict[str, str]:
    """A stable identifier for a resource v2 sends no id for (``urn:cmio:v2:<kind>``).

    Built from the natural key (patient, code, date...) so a repeated message finds it again;
    ``~`` separates the parts (``|`` would need escaping in every search).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    value = "~".join(parts)
    return {"system": f"{_DERIVED}{kind}", "value": value.replace("|", "~")}


def patient_identifier(ctx: MapContext, pid: Segment) -> dict[str, Any]:
    """The identifier patients are matched by: PID-3 with type MR (or MRN), else the first PID-3, else PID-2.

    Raises:
        MappingError: no identifier in PID-3 or PID-2.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    reps = pid.field(3).repetitions
    for rep in reps:
        if rep.get(5).upper() in ("MR", "MRN") and rep.get(1):
            found = identifier(ctx, rep, "PID-3")
            if found:
                return found
    for n in (3, 2):
        for rep in pid.field(n).repetitions:
            found = identifier(ctx, rep, f"PID-{n}")
            if found:
                return found
    raise MappingError("no patient identifier (PID-3 and PID-2 are empty)", "PID-3")


def patient(ctx: MapContext, pid: Segment, nk1: list[Segment]) -> dict[str, Any]:
    """PID (+ NK1 as contacts) -> Patient (IG maps PID[Patient], NK1[Patient]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    out: dict[str, Any] = {"resourceType": "Patient"}
    idents: list[dict[str, Any]] = []
    for n in (2, 3, 4):
        for i, rep in enumerate(pid.field(n).repetitions, start=1):
            found = identifier(ctx, rep, f"PID-{n}({i})")
            if found and found not in idents:
                idents.append(found)
    ssn = pid.get(19)
    if ssn and not any(i.get("system") == _SSN or i["value"] == ssn for i in idents):
        idents.append(
            {
                "type": {"coding": [{"system": v2_table_system("0203"), "code": "SS"}]},
                "system": _SSN,
                "value": ssn,
            }
        )
    out["identifier"] = idents
    names = [
        nm
        for i, rep in enumerate(pid.field(5).repetitions, 1)
        if (nm := human_name(ctx, rep, f"PID-5({i})"))
    ]
    names += [
        {**nm, "use": nm.get("use", "nickname")}
        for i, rep in enumerate(pid.field(9).repetitions, 1)
        if (nm := human_name(ctx, rep, f"PID-9({i})"))
    ]
    if names:
        out["name"] = names
    maiden = pid.get(6)
    extensions: list[dict[str, Any]] = []
    if maiden:
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": maiden,
            }
        )
    telecom = [
        t
        for n, use in ((13, "home"), (14, "work"), (40, ""))
        for i, rep in enumerate(pid.field(n).repetitions, 1)
        if (t := contact_point(ctx, rep, f"PID-{n}({i})", use))
    ]
    if telecom:
        out["telecom"] = telecom
    gender = vocab(ctx, "AdministrativeSex", pid.get(8), "PID-8", "HL70001")
    if gender:
        out["gender"] = gender
    birth = pid.get(7)
    when = datetime(ctx, birth, "PID-7") if birth else None
    if when:
        out["birthDate"] = when[:10]
        if "T" in when:  # a birth time (PID-7 longer than a date)
            out["_birthDate"] = {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                        "valueDateTime": when,
                    }
                ]
            }
    deceased = pid.get(29)
    if deceased and (when := datetime(ctx, deceased, "PID-29")):
        out["deceasedDateTime"] = when
    elif pid.get(30) in ("Y", "N"):
        out["deceasedBoolean"] = pid.get(30) == "Y"
    addresses = [
        a
        for i, rep in enumerate(pid.field(11).repetitions, 1)
        if (a := address(ctx, rep, f"PID-11({i})"))
    ]
    if addresses:
        out["address"] = addresses
    marital = codeable(ctx, pid.field(16).repetition(1), "PID-16", "MaritalStatus", "HL70002")
    if marital:
        out["maritalStatus"] = marital
    if pid.get(25).isdigit():
        out["multipleBirthInteger"] = int(pid.get(25))
    elif pid.get(24) in ("Y", "N"):
        out["multipleBirthBoolean"] = pid.get(24) == "Y"
    language = codeable(ctx, pid.field(15).repetition(1), "PID-15")
    if language:
        out["communication"] = [{"language": language}]
    religion = codeable(ctx, pid.field(17).repetition(1), "PID-17", v2_table="HL70006")
    if religion:
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-religion",
                "valueCodeableConcept": religion,
            }
        )
    extensions += race_and_ethnicity(ctx, pid)
    if extensions:
        out["extension"] = extensions
    contacts = [c for i, seg in enumerate(nk1, 1) if (c := _contact(ctx, seg, i))]
    if contacts:
        out["contact"] = contacts
    return out


def _contact(ctx: MapContext, nk1: Segment, index: int) -> dict[str, Any] | None:
    """NK1 -> Patient.contact (IG map NK1[Patient])."""
    path = f"NK1[{index}]"
    out: dict[str, Any] = {}
    name = human_name(ctx, nk1.field(2).repetition(1), f"{path}-2")
    if name:
        out["name"] = name
    relationships = [
        c
        for n, vocabulary, table in ((3, "Relationship", "HL70063"), (7, "", "HL70131"))
        if (c := codeable(ctx, nk1.field(n).repetition(1), f"{path}-{n}", vocabulary, table))
    ]
    if relationships:
        out["relationship"] = relationships
    telecom = [
        t
        for n, use in ((5, "home"), (6, "work"))
        for i, rep in enumerate(nk1.field(n).repetitions, 1)
        if (t := contact_point(ctx, rep, f"{path}-{n}({i})", use))
    ]
    if telecom:
        out["telecom"] = telecom
    addr = address(ctx, nk1.field(4).repetition(1), f"{path}-4")
    if addr:
        out["address"] = addr
    gender = vocab(ctx, "AdministrativeSex", nk1.get(15), f"{path}-15", "HL70001")
    if gender:
        out["gender"] = gender
    start, end = datetime(ctx, nk1.get(8), f"{path}-8"), datetime(ctx, nk1.get(9), f"{path}-9")
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        out["period"] = period
    return out or None


def encounter(
    ctx: MapContext, pv1: Segment, patient_ref: str, event: str, locations: bool = True
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """PV1 -> Encounter (IG map PV1[Encounter]) and its visit-number identifier.

    ``event`` (MSH-9.2) sets the status where the IG's event map does: A03 discharge
    finished, A11 cancel admit cancelled, A13 cancel discharge in-progress. ``None`` when
    PV1-19 (visit number) is empty: without it updates could not find the encounter.
    ``locations``: write the PV1 locations as Location resources (else display-only
    references; see :func:`cmio.interfaces.hl7v2.mapping.locations.encounter_locations`).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment and datatype maps).
    """
    visit = identifier(ctx, pv1.field(19).repetition(1), "PV1-19")
    if visit is None:
        ctx.issue("PV1-19", "no visit number: no Encounter created")
        return None
    visit["type"] = {
        "coding": [{"system": v2_table_system("0203"), "code": "VN"}],
        "text": "visit number",
    }
    out: dict[str, Any] = {"resourceType": "Encounter", "identifier": [visit]}
    patient_class = clean_code(pv1.get(2))
    status = "unknown"
    if patient_class:
        status = (
            vocab(ctx, "PatientClass[EncounterStatus]", patient_class, "PV1-2", "HL70004") or status
        )
    if pv1.get(45):
        status = "finished"
    status = {"A03": "finished", "A11": "cancelled", "A13": "in-progress"}.get(event, status)
    out["status"] = status
    cls = None
    if patient_class:
        mapped = VOCABULARY["PatientClass[EncounterClass]"].get(patient_class)
        if mapped:
            cls = {"system": mapped[2], "code": mapped[0]}
            if mapped[1]:
                cls["display"] = mapped[1]
        else:
            ctx.report("PV1-2", "HL70004", patient_class, "", "unknown patient class")
            cls = {"system": v2_table_system("0004"), "code": patient_class}
    out["class"] = cls or {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"}
    for key, n, table in (("type", 4, "HL70007"), ("serviceType", 10, "HL70069")):
        concept = codeable(ctx, pv1.field(n).repetition(1), f"PV1-{n}", v2_table=table)
        if concept:
            out[key] = [concept] if key == "type" else concept
    out["subject"] = {"reference": patient_ref}
    participants = []
    for n, code, display in (
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
    ):
        for i, rep in enumerate(pv1.field(n).repetitions, 1):
            ref = practitioner(ctx, rep, f"PV1-{n}({i})")
            if ref:
                participants.append(
                    {
                        "type": [
                            {
                                "coding": [
                                    {"system": _PARTICIPATION, "code": code, "display": display}
                                ]
                            }
                        ],
                        "individual": ref,
                    }
                )
    if participants:
        out["participant"] = participants
    start, end = datetime(ctx, pv1.get(44), "PV1-44"), datetime(ctx, pv1.get(45), "PV1-45")
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        out["period"] = period
    hospitalization: dict[str, Any] = {}
    for key, n, table in (
        ("reAdmission", 13, "HL70092"),
        ("admitSource", 14, "HL70023"),
        ("dischargeDisposition", 36, "HL70112"),
    ):
        concept = codeable(ctx, pv1.field(n).repetition(1), f"PV1-{n}", v2_table=table)
        if concept:
            hospitalization[key] = concept
    if hospitalization:
        out["hospitalization"] = hospitalization
    places = encounter_locations(ctx, pv1, patient_class, event, locations)
    if places:
        out["location"] = places
    return out, visit
