"""Read the synthetic health system's Bulk Data NDJSON into compact HL7 v2 records.

Reference data (organizations, locations, clinicians, patients with their coverage)
is kept whole; encounters, lab DiagnosticReports (with their Observations and the
ServiceRequest that ordered them) and Immunizations become :mod:`messages` inputs.
Bulk Data layout: https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format .
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cmio.synth.hl7v2.records import (
    CodedValue,
    LabReport,
    LabResult,
    PatientRecord,
    PlaceRecord,
    PractitionerRecord,
    Visit,
    coverage_record,
    first_coding,
    parse_instant,
    patient_record,
    practitioner_record,
    ref_id,
)

__all__ = ["Context", "digits", "instant_key", "load_context", "read_ndjson"]

Json = dict[str, Any]

_CLASS = {"IMP": "I", "EMER": "E", "AMB": "O", "VR": "O", "HH": "O", "OBSENC": "O"}
_ADMIT_SOURCE = {"emd": "7", "hosp-trans": "4", "nursing": "5", "outp": "2", "gp": "1"}
_DISPOSITION = {
    k: CodedValue(code, text, "HL70112")
    for k, code, text in (
        ("home", "01", "Discharged to home or self care"),
        ("alt-home", "01", "Discharged to home or self care"),
        ("snf", "03", "Discharged/transferred to skilled nursing facility"),
        ("other-hcf", "05", "Discharged/transferred to another type of institution"),
        ("aadvice", "07", "Left against medical advice"),
        ("exp", "20", "Expired"),
        ("hosp", "50", "Discharged to hospice - home"),
        ("rehab", "62", "Discharged/transferred to an inpatient rehabilitation facility"),
        ("long", "63", "Discharged/transferred to a long term care hospital"),
        ("psy", "65", "Discharged/transferred to a psychiatric hospital"),
        ("oth", "70", "Discharged/transferred to another type of health care institution"),
    )
}
# LOINC -> (low, high) normal limits for adults; None is an open side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "2345-7": (70, 99),
    "2951-2": (136, 145),
    "2823-3": (3.5, 5.1),
    "2160-0": (0.6, 1.3),
    "2093-3": (None, 200),
    "2571-8": (None, 150),
    "2085-9": (40, None),
    "18262-6": (None, 100),
    "6690-2": (4.5, 11.0),
    "777-3": (150, 400),
    "4548-4": (None, 5.7),
    "14959-1": (None, 30),
}
_HEMOGLOBIN = {"F": (12.0, 15.5), "M": (13.5, 17.5)}
_STATUS = {"final": "F", "preliminary": "P", "amended": "C", "corrected": "C"}


_LEADING_ID = re.compile(rb'"id"\s*:\s*"([^"]+)"')


def digits(text: str, width: int = 10) -> str:
    """A stable ``width``-digit number derived from ``text`` (visit, order numbers; CX.1/EI.1)."""
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    return str(value % 10**width).zfill(width)


def instant_key(value: datetime) -> float:
    """POSIX seconds for ordering (a naive value is read as UTC, never as local time)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def read_ndjson(path: Path, only: set[str] | None = None) -> Iterator[Json]:
    """Yield the resources of one NDJSON file (nothing when it does not exist).

    Args:
        path: the ``Type.ndjson`` file.
        only: when given, yield only resources with these ids; lines whose leading
            ``"id"`` is not wanted are skipped without being parsed.
    """
    if not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            if only is not None:
                match = _LEADING_ID.search(line, 0, 200)
                if match is not None and match.group(1).decode() not in only:
                    continue
            resource: Json = orjson.loads(line)
            if only is None or resource.get("id") in only:
                yield resource


def _initials(name: str) -> str:
    return "".join(w[0] for w in name.split() if w[:1].isalnum()).upper()[:8] or "UNK"


@dataclass(slots=True)
class Context:
    """Everything the feeds are built from, keyed by FHIR id."""

    authority: str = "RBH"
    patients: dict[str, PatientRecord] = field(default_factory=dict)
    practitioners: dict[str, PractitionerRecord] = field(default_factory=dict)
    places: dict[str, PlaceRecord] = field(default_factory=dict)
    organizations: dict[str, str] = field(default_factory=dict)
    visits: dict[str, tuple[str, str, Visit]] = field(default_factory=dict)
    reports: list[tuple[str, str, LabReport]] = field(default_factory=list)
    immunizations: list[Json] = field(default_factory=list)


def _places(source: Path) -> dict[str, PlaceRecord]:
    raw = {r["id"]: r for r in read_ndjson(source / "Location.ndjson")}
    places: dict[str, PlaceRecord] = {}
    for lid, loc in raw.items():
        root = loc
        for _ in range(8):  # partOf chains are short; a bound also stops cycles
            parent = raw.get(ref_id(root.get("partOf")))
            if parent is None or parent is root:
                break
            root = parent
        kind = first_coding((loc.get("type") or [None])[0])
        name = str(loc.get("name", ""))
        places[lid] = PlaceRecord(
            kind.code if kind else _initials(name), _initials(root["name"]), name
        )
    return places


def _visit(enc: Json, ctx: Context) -> Visit:
    cls = str(enc.get("class", {}).get("code", "AMB"))
    patient_class = _CLASS.get(cls, "O")
    attending = None
    for part in enc.get("participant", []):
        attending = ctx.practitioners.get(ref_id(part.get("individual")))
        if attending is not None:
            break
    location: Json = next(iter(enc.get("location", [])), {})
    place = ctx.places.get(ref_id(location.get("location")))
    period = enc.get("period", {})
    hosp = enc.get("hospitalization", {})
    source = first_coding(hosp.get("admitSource"))
    disposition = first_coding(hosp.get("dischargeDisposition"))
    number = digits(str(enc["id"]), 12)
    diagnoses = tuple(
        CodedValue(str(c["code"]), str(c.get("display", "")), "I10C")
        for reason in enc.get("reasonCode", [])
        for c in reason.get("coding", [])
        if c.get("system") == "http://hl7.org/fhir/sid/icd-10-cm" and "code" in c
    )
    inpatient = patient_class == "I"
    return Visit(
        number=number,
        authority=ctx.authority,
        patient_class=patient_class,
        place=place,
        attending=attending,
        start=parse_instant(period["start"]),
        end=parse_instant(period["end"]) if "end" in period else None,
        admission_type="E"
        if patient_class == "E" or (source and source.code == "emd")
        else ("R" if inpatient else ""),
        hospital_service="MED" if inpatient else "",
        admit_source=_ADMIT_SOURCE.get(source.code, "9") if source else "",
        discharge_disposition=_DISPOSITION.get(disposition.code)
        if disposition
        else (_DISPOSITION["home"] if patient_class in "IE" else None),
        room=f"{3 + int(number[-1]) % 4}W-{300 + int(number[-3:-1])}"
        if inpatient
        else (f"ED{int(number[-2:]) % 24 + 1:02d}" if patient_class == "E" else ""),
        bed=("A" if int(number[-4]) % 2 else "B") if inpatient else "",
        diagnoses=diagnoses,
    )


def _range(loinc: str, sex: str) -> tuple[float | None, float | None]:
    if loinc == "718-7":
        return _HEMOGLOBIN.get(sex, (12.0, 17.5))
    return _RANGES.get(loinc, (None, None))


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def lab_result(obs: Json, sex: str) -> LabResult | None:
    """One lab Observation as a :class:`LabResult` (reference range and flag from the
    Observation when it has them, else from adult normal limits)."""
    code = first_coding(obs.get("code"))
    if code is None:
        return None
    effective = obs.get("effectiveDateTime")
    when = parse_instant(effective) if effective else None
    status = _STATUS.get(str(obs.get("status", "final")), "F")
    given_range = next(iter(obs.get("referenceRange", [])), None)
    given_flag = first_coding((obs.get("interpretation") or [None])[0])
    value: float | int | CodedValue | str
    if "valueQuantity" in obs and isinstance(obs["valueQuantity"].get("value"), int | float):
        q = obs["valueQuantity"]
        number: float | int = q["value"]
        value = number
        unit = str(q.get("code") or q.get("unit") or "")
        low, high = _range(code.code, sex)
        if given_range is not None:
            low = given_range.get("low", {}).get("value")
            high = given_range.get("high", {}).get("value")
        text = str(given_range.get("text", "")) if given_range else ""
        if not text:
            text = (
                f"{_fmt(low)}-{_fmt(high)}"
                if low is not None and high is not None
                else (
                    f"<{_fmt(high)}"
                    if high is not None
                    else f">{_fmt(low)}"
                    if low is not None
                    else ""
                )
            )
        flag = "N" if text else ""
        if low is not None and number < low:
            flag = "L"
        elif high is not None and (number > high or (low is None and number >= high)):
            flag = "H"
    elif "valueCodeableConcept" in obs:
        coded = first_coding(obs["valueCodeableConcept"])
        if coded is None:
            return None
        value, unit, text = coded, "", "Negative" if code.code == "29771-3" else ""
        flag = "N" if coded.code == "260385009" else "A"
    elif isinstance(obs.get("valueString"), str):
        value, unit, text, flag = obs["valueString"], "", "", ""
    else:
        return None
    return LabResult(code, value, unit, when, status, text, given_flag.code if given_flag else flag)


def load_context(source: Path) -> Context:
    """Read the reference data, encounters, lab reports and immunizations of ``source``.

    Args:
        source: a ``cmio synth`` NDJSON output folder.

    Returns:
        The :class:`Context`. See https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html .
    """
    ctx = Context()
    short: dict[str, str] = {}
    for org in read_ndjson(source / "Organization.ndjson"):
        name = str(org.get("name", ""))
        ctx.organizations[org["id"]] = name
        ident = next((str(i["value"]) for i in org.get("identifier", []) if "value" in i), "")
        short[org["id"]] = ident or _initials(name)
    ctx.places = _places(source)
    for prac in read_ndjson(source / "Practitioner.ndjson"):
        ctx.practitioners[prac["id"]] = practitioner_record(prac)
    for pat in read_ndjson(source / "Patient.ndjson"):
        record = patient_record(pat, short)
        ctx.patients[record.id] = record
        ctx.authority = record.mrn_authority or ctx.authority
    for cov in read_ndjson(source / "Coverage.ndjson"):
        patient = ctx.patients.get(ref_id(cov.get("beneficiary")))
        if patient is not None and cov.get("status", "active") == "active":
            patient.coverages.append(coverage_record(cov, short))
    for patient in ctx.patients.values():
        patient.coverages.sort(key=lambda c: (c.start, c.plan_code, c.member_id))
    for enc in read_ndjson(source / "Encounter.ndjson"):
        pid = ref_id(enc.get("subject"))
        if pid in ctx.patients and "start" in enc.get("period", {}):
            ctx.visits[enc["id"]] = (pid, str(enc.get("class", {}).get("code")), _visit(enc, ctx))
    _load_reports(source, ctx)
    ctx.immunizations = [
        imm
        for imm in read_ndjson(source / "Immunization.ndjson")
        if ref_id(imm.get("patient")) in ctx.patients and "occurrenceDateTime" in imm
    ]
    return ctx


def _is_lab(report: Json) -> bool:
    return any(
        c.get("code") in ("LAB", "CH", "HM")
        for cat in report.get("category", [])
        for c in cat.get("coding", [])
    )


def _load_reports(source: Path, ctx: Context) -> None:
    reports = [
        r
        for r in read_ndjson(source / "DiagnosticReport.ndjson")
        if _is_lab(r) and ref_id(r.get("subject")) in ctx.patients
    ]
    wanted = {ref_id(x) for r in reports for x in r.get("result", [])}
    orders = {ref_id(b) for r in reports for b in r.get("basedOn", [])}
    requesters: dict[str, str] = {}
    for req in read_ndjson(source / "ServiceRequest.ndjson", orders):
        requesters[req["id"]] = ref_id(req.get("requester"))
    found: dict[str, LabResult | None] = {}
    for obs in read_ndjson(source / "Observation.ndjson", wanted):
        subject = ctx.patients.get(ref_id(obs.get("subject")))
        found[obs["id"]] = lab_result(obs, subject.sex if subject else "U")
    for report in reports:
        pid = ref_id(report.get("subject"))
        results = [r for r in (found.get(ref_id(x)) for x in report.get("result", [])) if r]
        order = next((ref_id(b) for b in report.get("basedOn", [])), "")
        effective = parse_instant(
            report.get("effectiveDateTime") or report.get("issued") or "1970-01-01"
        )
        issued = parse_instant(report["issued"]) if "issued" in report else effective
        performer = next((ref_id(p) for p in report.get("performer", [])), "")
        lab = LabReport(
            placer=digits(order or "placer:" + report["id"]),
            filler="L" + digits(report["id"], 9),
            code=first_coding(report.get("code")) or CodedValue("", "", "LN"),
            status=_STATUS.get(str(report.get("status", "final")), "F"),
            effective=effective,
            issued=issued,
            ordering=ctx.practitioners.get(requesters.get(order, "")),
            performing_lab=ctx.organizations.get(performer, ""),
            results=tuple(results),
        )
        ctx.reports.append((pid, ref_id(report.get("encounter")), lab))
