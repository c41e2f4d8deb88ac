"""Compact views of the FHIR resources that the HL7 v2 feeds need.

Each record keeps only what a segment needs, so a whole health system's patients,
clinicians and places fit in memory while encounters, reports and immunizations stream.
The FHIR-to-v2 direction is the reverse of the HL7 V2-to-FHIR IG maps
(https://build.fhir.org/ig/HL7/v2-to-fhir/), e.g. PID[Patient], PV1[Encounter], XCN[Practitioner].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

__all__ = [
    "Address",
    "CodedValue",
    "CoverageRecord",
    "Header",
    "Immunization",
    "LabReport",
    "LabResult",
    "PatientRecord",
    "Phone",
    "PlaceRecord",
    "PractitionerRecord",
    "Quirks",
    "Visit",
    "coverage_record",
    "first_coding",
    "parse_instant",
    "patient_record",
    "practitioner_record",
    "ref_id",
]

Json = dict[str, Any]

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
_RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A code with its display and HL7 table 0396 coding system name (``LN``, ``CVX``, ...)."""

    code: str
    display: str
    system: str


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (XAD)."""

    lines: tuple[str, ...]
    city: str
    state: str
    postal_code: str
    country: str
    use: str = "H"


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number (XTN): HL7 0201 use (PRN/WPN/PRS) and 0202 equipment (PH/CP)."""

    number: str
    use: str = "PRN"
    equipment: str = "PH"


@dataclass(slots=True)
class PatientRecord:
    """What PID needs about a patient."""

    id: str
    mrn: str
    mrn_system: str
    mrn_authority: str
    family: str
    given: tuple[str, ...]
    sex: str
    birth_date: str
    ssn: str = ""
    race: CodedValue | None = None
    ethnicity: CodedValue | None = None
    addresses: tuple[Address, ...] = ()
    phones: tuple[Phone, ...] = ()
    language: str = ""
    marital_status: str = ""
    deceased: str = ""
    coverages: list[CoverageRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PractitionerRecord:
    """What XCN needs about a clinician."""

    npi: str
    family: str
    given: tuple[str, ...]
    degree: str


@dataclass(frozen=True, slots=True)
class PlaceRecord:
    """A care location (PL): point of care, facility and description."""

    point_of_care: str
    facility: str
    description: str


@dataclass(frozen=True, slots=True)
class CoverageRecord:
    """What IN1 needs about a Coverage."""

    plan_code: str
    plan_name: str
    payer_name: str
    payer_id: str
    member_id: str
    relationship: str
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class LabResult:
    """One lab Observation as an OBX: value (number or coded), units, range, flag."""

    code: CodedValue
    value: float | int | CodedValue | str
    unit: str
    effective: datetime | None
    status: str
    reference_range: str
    interpretation: str


def ref_id(reference: Json | None) -> str:
    """The id of a literal reference ``Type/id`` (https://hl7.org/fhir/R4/references.html)."""
    if not reference:
        return ""
    text = str(reference.get("reference", ""))
    return text.rsplit("/", 1)[-1]


def parse_instant(text: str) -> datetime:
    """Parse a FHIR dateTime; a date alone (or a year, a year-month) becomes naive midnight.

    See https://hl7.org/fhir/R4/datatypes.html#dateTime .
    """
    if len(text) in (4, 7):
        text = (text + "-01-01")[:10]
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day)
    return datetime.fromisoformat(text)


_SYSTEM_NAMES = {
    "http://loinc.org": "LN",
    "http://snomed.info/sct": "SCT",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://unitsofmeasure.org": "UCUM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://hl7.org/fhir/sid/icd-10-cm": "I10C",
    "urn:oid:2.16.840.1.113883.6.238": "CDCREC",
}


def first_coding(concept: Json | None) -> CodedValue | None:
    """The first coding of a CodeableConcept, with its v2 coding system name (table 0396).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (CWE[CodeableConcept]).
    """
    if not concept:
        return None
    for coding in concept.get("coding", []):
        system = str(coding.get("system", ""))
        name = _SYSTEM_NAMES.get(system, system)
        return CodedValue(str(coding.get("code", "")), str(coding.get("display", "")), name)
    return None


def _extension_coding(resource: Json, url: str) -> CodedValue | None:
    for ext in resource.get("extension", []):
        if ext.get("url") == url:
            for inner in ext.get("extension", []):
                if inner.get("url") == "ombCategory":
                    return first_coding({"coding": [inner["valueCoding"]]})
    return None


_SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
_PHONE_USE = {"home": "PRN", "work": "WPN", "mobile": "PRS"}


def patient_record(resource: Json, authorities: dict[str, str]) -> PatientRecord:
    """Build a :class:`PatientRecord` from a FHIR Patient (reverse of the PID[Patient] map).

    Args:
        resource: the Patient.
        authorities: Organization id to its short identifier (assigning authority namespace).

    Returns:
        The record. See https://build.fhir.org/ig/HL7/v2-to-fhir/ (PID[Patient]).
    """
    mrn = mrn_system = authority = ssn = ""
    for ident in resource.get("identifier", []):
        codes = [c.get("code") for c in ident.get("type", {}).get("coding", [])]
        if "MR" in codes and not mrn:
            mrn = str(ident.get("value", ""))
            mrn_system = str(ident.get("system", ""))
            authority = authorities.get(ref_id(ident.get("assigner")), "")
        elif "SS" in codes or ident.get("system") == SSN_SYSTEM:
            ssn = str(ident.get("value", ""))
    names = resource.get("name", [{}])
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    addresses = tuple(
        Address(
            tuple(a.get("line", [])),
            a.get("city", ""),
            a.get("state", ""),
            a.get("postalCode", ""),
            a.get("country", ""),
        )
        for a in resource.get("address", [])
    )
    phones = tuple(
        Phone(
            str(t.get("value", "")),
            _PHONE_USE.get(t.get("use", "home"), "PRN"),
            "CP" if t.get("use") == "mobile" else "PH",
        )
        for t in resource.get("telecom", [])
        if t.get("system") == "phone"
    )
    language = ""
    for comm in resource.get("communication", []):
        coded = first_coding(comm.get("language"))
        language = coded.code if coded else ""
        break
    marital = first_coding(resource.get("maritalStatus"))
    return PatientRecord(
        id=str(resource["id"]),
        mrn=mrn or str(resource["id"]),
        mrn_system=mrn_system,
        mrn_authority=authority,
        family=str(name.get("family", "")),
        given=tuple(name.get("given", [])),
        sex=_SEX.get(str(resource.get("gender", "")), "U"),
        birth_date=str(resource.get("birthDate", "")),
        ssn=ssn,
        race=_extension_coding(resource, _RACE_URL),
        ethnicity=_extension_coding(resource, _ETHNICITY_URL),
        addresses=addresses,
        phones=phones,
        language=language,
        marital_status=marital.code if marital else "",
        deceased=str(resource.get("deceasedDateTime", "")),
    )


def practitioner_record(resource: Json) -> PractitionerRecord:
    """Build a :class:`PractitionerRecord` (reverse of XCN[Practitioner]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """
    npi = next(
        (str(i["value"]) for i in resource.get("identifier", []) if i.get("system") == NPI_SYSTEM),
        "",
    )
    name = (resource.get("name") or [{}])[0]
    suffix = name.get("suffix") or [""]
    return PractitionerRecord(
        npi, str(name.get("family", "")), tuple(name.get("given", [])), str(suffix[0])
    )


_RELATIONSHIP = {"self": "SEL", "spouse": "SPO", "child": "CHD", "other": "OTH", "parent": "PAR"}


def coverage_record(resource: Json, payer_ids: dict[str, str]) -> CoverageRecord:
    """Build a :class:`CoverageRecord` (reverse of IN1[Coverage]).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """
    payor = (resource.get("payor") or [{}])[0]
    plan: Json = next(iter(resource.get("class", [])), {})
    relation = first_coding(resource.get("relationship"))
    period = resource.get("period", {})
    return CoverageRecord(
        plan_code=str(plan.get("value", "")),
        plan_name=str(plan.get("name", "")),
        payer_name=str(payor.get("display", "")),
        payer_id=payer_ids.get(ref_id(payor), ""),
        member_id=str(resource.get("subscriberId", "")),
        relationship=_RELATIONSHIP.get(relation.code, "OTH") if relation else "SEL",
        start=str(period.get("start", "")),
        end=str(period.get("end", "")),
    )


@dataclass(frozen=True, slots=True)
class Header:
    """MSH content: who sends what to whom, when (MSH-3..MSH-12)."""

    code: str
    event: str
    structure: str
    sending_application: str
    sending_facility: str
    when: datetime
    control_id: str
    receiving_application: str = "CMIO"
    receiving_facility: str = "CMIO"


@dataclass(frozen=True, slots=True)
class Quirks:
    """Sender habits that real feeds show (all optional)."""

    pad_trailing: bool = False
    ssn_in_pid19: bool = False
    extra_phone: Phone | None = None
    z_segment: tuple[str, ...] = ()
    note: str = ""
    old_address: Address | None = None
    old_phone: Phone | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """PV1 content for one encounter."""

    number: str
    authority: str
    patient_class: str
    place: PlaceRecord | None
    attending: PractitionerRecord | None
    start: datetime
    end: datetime | None = None
    admission_type: str = ""
    hospital_service: str = ""
    admit_source: str = ""
    discharge_disposition: CodedValue | None = None
    room: str = ""
    bed: str = ""
    diagnoses: tuple[CodedValue, ...] = ()


@dataclass(frozen=True, slots=True)
class LabReport:
    """ORC/OBR/OBX content for one lab DiagnosticReport."""

    placer: str
    filler: str
    code: CodedValue
    status: str
    effective: datetime
    issued: datetime
    ordering: PractitionerRecord | None
    performing_lab: str
    results: tuple[LabResult, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Immunization:
    """ORC/RXA/RXR content for one Immunization."""

    placer: str
    filler: str
    vaccine: CodedValue
    when: datetime
    recorded: datetime
    historical: bool
    lot: str
    amount: str
    unit: str
    route: CodedValue
    site: CodedValue | None
    administering: PractitionerRecord | None
    facility: str
