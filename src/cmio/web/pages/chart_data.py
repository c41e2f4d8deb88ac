"""The patient chart's content, read from the resources of one patient's compartment.

The chart page reads ``Patient/[id]/$everything``
(https://hl7.org/fhir/R4/patient-operation-everything.html) as the viewer and turns the
resources into the sections a physician scans: demographics, problems (active
``Condition``), medications (active ``MedicationRequest``), allergies, immunizations,
encounters, results (HbA1c LOINC 4548-4, blood pressure 85354-9 with its components
8480-6 and 8462-4, other laboratory and vital-sign results by code) and notes
(``DocumentReference`` and ``Communication`` text).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from cmio.web.pages.chart_results import (
    BloodPressure,
    Note,
    Series,
    code_of,
    day_of,
    display,
    notes,
    ref_display,
    results,
)

__all__ = [
    "ACTIVE_CONDITION",
    "Allergy",
    "Chart",
    "Demographics",
    "Immunization",
    "Medication",
    "Problem",
    "Visit",
    "build_chart",
    "demographics",
]

ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
"""Condition clinical statuses that are active (condition-clinical: recurrence and relapse
are kinds of active)."""
_MR = "MR"


def _status(concept: Any) -> str:
    return code_of(concept) or display(concept)


def _age(birth: str, today: date) -> int | None:
    try:
        born = date.fromisoformat(birth[:10])
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class Demographics:
    """The chart header. ``mrn``: the identifier typed ``v2-0203#MR``."""

    id: str
    name: str
    sex: str
    birth_date: str
    age: int | None
    mrn: str
    address: str
    telecom: str
    deceased: str


def _name(patient: Mapping[str, Any]) -> str:
    names = [n for n in patient.get("name", []) if isinstance(n, Mapping)]
    names.sort(key=lambda n: n.get("use") != "official")
    for name in names:
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return "(no name)"


def demographics(patient: Mapping[str, Any], today: date) -> Demographics:
    """The header of a Patient resource (https://hl7.org/fhir/R4/patient.html)."""
    mrn = ""
    for ident in patient.get("identifier", []):
        if code_of(ident.get("type")) == _MR and ident.get("value"):
            mrn = str(ident["value"])
            break
    address = ""
    for addr in patient.get("address", [])[:1]:
        parts = [*addr.get("line", []), addr.get("city"), addr.get("state"), addr.get("postalCode")]
        address = addr.get("text") or ", ".join(str(p) for p in parts if p)
    telecom = ", ".join(
        f"{t.get('system', 'contact')} {t.get('value')}"
        for t in patient.get("telecom", [])[:2]
        if t.get("value")
    )
    deceased = patient.get("deceasedDateTime") or ("yes" if patient.get("deceasedBoolean") else "")
    birth = str(patient.get("birthDate") or "")
    when = date.fromisoformat(deceased[:10]) if _is_day(deceased) else today
    return Demographics(
        str(patient.get("id", "")),
        _name(patient),
        str(patient.get("gender") or "unknown"),
        birth,
        _age(birth, when) if birth else None,
        mrn,
        str(address),
        telecom,
        day_of(deceased) if _is_day(deceased) else str(deceased),
    )


def _is_day(text: Any) -> bool:
    try:
        date.fromisoformat(str(text)[:10])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Problem:
    """An active Condition."""

    display: str
    code: str
    onset: str
    status: str
    category: str


@dataclass(frozen=True, slots=True)
class Medication:
    """An active MedicationRequest."""

    display: str
    code: str
    authored: str
    dosage: str
    requester: str


@dataclass(frozen=True, slots=True)
class Allergy:
    """An AllergyIntolerance."""

    display: str
    category: str
    criticality: str
    status: str
    reactions: str
    recorded: str


@dataclass(frozen=True, slots=True)
class Immunization:
    """An Immunization."""

    display: str
    date: str
    status: str


@dataclass(frozen=True, slots=True)
class Visit:
    """An Encounter (``start``: ISO dateTime)."""

    id: str
    start: str
    end: str
    kind: str
    type: str
    reason: str
    provider: str
    status: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the chart page shows, newest first where it is a history."""

    patient: Demographics
    problems: tuple[Problem, ...]
    medications: tuple[Medication, ...]
    allergies: tuple[Allergy, ...]
    immunizations: tuple[Immunization, ...]
    encounters: tuple[Visit, ...]
    a1c: Series | None
    blood_pressure: tuple[BloodPressure, ...]
    results: tuple[Series, ...]
    notes: tuple[Note, ...]


def _problems(conditions: Iterable[Mapping[str, Any]]) -> tuple[Problem, ...]:
    found = []
    for c in conditions:
        status = _status(c.get("clinicalStatus"))
        if status not in ACTIVE_CONDITION:
            continue
        onset = c.get("onsetDateTime") or (c.get("onsetPeriod") or {}).get("start")
        category = ", ".join(display(x) for x in c.get("category", []))
        found.append(
            Problem(display(c.get("code")), code_of(c.get("code")), day_of(onset), status, category)
        )
    return tuple(sorted(found, key=lambda p: (p.onset, p.display), reverse=True))


def _medications(requests: Iterable[Mapping[str, Any]]) -> tuple[Medication, ...]:
    found = []
    for m in requests:
        if m.get("status") != "active":
            continue
        concept = m.get("medicationCodeableConcept")
        name = display(concept) or ref_display(m.get("medicationReference"))
        dosage = "; ".join(
            str(d.get("text")) for d in m.get("dosageInstruction", []) if d.get("text")
        )
        found.append(
            Medication(
                name,
                code_of(concept),
                day_of(m.get("authoredOn")),
                dosage,
                ref_display(m.get("requester")),
            )
        )
    return tuple(sorted(found, key=lambda m: (m.authored, m.display), reverse=True))


def _allergies(items: Iterable[Mapping[str, Any]]) -> tuple[Allergy, ...]:
    found = []
    for a in items:
        reactions = "; ".join(
            ", ".join(display(x) for x in r.get("manifestation", []))
            + (f" ({r['severity']})" if r.get("severity") else "")
            for r in a.get("reaction", [])
        )
        found.append(
            Allergy(
                display(a.get("code")),
                ", ".join(str(c) for c in a.get("category", [])),
                str(a.get("criticality") or ""),
                _status(a.get("clinicalStatus")),
                reactions,
                day_of(a.get("recordedDate") or a.get("onsetDateTime")),
            )
        )
    return tuple(sorted(found, key=lambda a: (a.recorded, a.display), reverse=True))


def _immunizations(items: Iterable[Mapping[str, Any]]) -> tuple[Immunization, ...]:
    found = [
        Immunization(
            display(i.get("vaccineCode")),
            day_of(i.get("occurrenceDateTime") or i.get("occurrenceString")),
            str(i.get("status") or ""),
        )
        for i in items
    ]
    return tuple(sorted(found, key=lambda i: (i.date, i.display), reverse=True))


def _visits(items: Iterable[Mapping[str, Any]]) -> tuple[Visit, ...]:
    found = []
    for e in items:
        period = e.get("period") or {}
        klass = e.get("class") or {}
        providers = [
            ref_display(p.get("individual"))
            for p in e.get("participant", [])
            if isinstance(p.get("individual"), Mapping)
        ]
        found.append(
            Visit(
                str(e.get("id", "")),
                str(period.get("start") or ""),
                str(period.get("end") or ""),
                str(klass.get("display") or klass.get("code") or ""),
                ", ".join(display(t) for t in e.get("type", [])),
                ", ".join(display(r) for r in e.get("reasonCode", [])),
                ", ".join(dict.fromkeys(p for p in providers if p)),
                str(e.get("status") or ""),
            )
        )
    return tuple(sorted(found, key=lambda v: v.start, reverse=True))


def build_chart(resources: Iterable[Mapping[str, Any]], patient_id: str, today: date) -> Chart:
    """The chart of ``patient_id`` from the resources of their compartment.

    Raises:
        LookupError: the Patient resource is not among ``resources``.
    """
    by_type: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    patient: Mapping[str, Any] | None = None
    for resource in resources:
        rtype = str(resource.get("resourceType"))
        if rtype == "Patient" and resource.get("id") == patient_id:
            patient = resource
        by_type[rtype].append(resource)
    if patient is None:
        raise LookupError(f"Patient/{patient_id} is not in the data read")
    observations = by_type["Observation"]
    a1c, pressures, series = results(observations)
    head = demographics(patient, today)
    return Chart(
        head,
        _problems(by_type["Condition"]),
        _medications(by_type["MedicationRequest"]),
        _allergies(by_type["AllergyIntolerance"]),
        _immunizations(by_type["Immunization"]),
        _visits(by_type["Encounter"]),
        a1c,
        pressures,
        series,
        _named(notes(by_type["DocumentReference"], by_type["Communication"]), head),
    )


def _named(found: tuple[Note, ...], head: Demographics) -> tuple[Note, ...]:
    """Notes whose author is the patient show their name, not the reference."""
    me = f"Patient/{head.id}"
    return tuple(replace(n, author=head.name) if n.author == me else n for n in found)
