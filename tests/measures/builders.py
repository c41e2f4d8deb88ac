"""Hand-written FHIR resources for the measure fixtures (QI-Core shaped, minimal)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import count
from typing import Any

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PERIOD = "2026-01-01/2026-12-31"

_ids = count(1)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _instant(day: str) -> str:
    return day if "T" in day else f"{day}T10:00:00-05:00"


def patient(pid: str, birth: str, gender: str = "female", gp: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "gender": gender,
        "birthDate": birth,
    }
    if gp:
        resource["generalPractitioner"] = [{"reference": f"Practitioner/{gp}"}]
    return resource


def visit(
    pid: str,
    day: str,
    code: tuple[str, str] = (CPT, "99213"),
    *,
    status: str = "finished",
    cls: str = "AMB",
    end: str | None = None,
    eid: str | None = None,
    practitioner: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid or _id("enc"),
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "type": [{"coding": [{"system": code[0], "code": code[1]}]}],
        "subject": _ref(pid),
        "period": {"start": _instant(day), "end": _instant(end or day)},
    }
    if practitioner:
        resource["participant"] = [{"individual": {"reference": f"Practitioner/{practitioner}"}}]
    return resource


def claim(pid: str, encounter_id: str, code: tuple[str, str], day: str) -> dict[str, Any]:
    return {
        "resourceType": "Claim",
        "id": _id("claim"),
        "status": "active",
        "use": "claim",
        "patient": _ref(pid),
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": code[0], "code": code[1]}]},
                "servicedDate": day,
                "encounter": [{"reference": f"Encounter/{encounter_id}"}],
            }
        ],
    }


def condition(
    pid: str,
    code: tuple[str, str],
    onset: str,
    *,
    abatement: str | None = None,
    verification: str = "confirmed",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _id("cond"),
        "verificationStatus": {"coding": [{"code": verification}]},
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": _ref(pid),
        "onsetDateTime": onset,
    }
    if abatement:
        resource["abatementDateTime"] = abatement
    return resource


def observation(
    pid: str,
    code: tuple[str, str],
    day: str,
    value: float | None = None,
    *,
    status: str = "final",
    value_code: str | None = None,
    encounter: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": status,
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": _ref(pid),
        "effectiveDateTime": _instant(day),
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value}
    if value_code is not None:
        resource["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": value_code}]}
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    return resource


def blood_pressure(
    pid: str, day: str, systolic: float, diastolic: float, *, encounter: str | None = None
) -> dict[str, Any]:
    resource = observation(pid, (LOINC, "85354-9"), day, encounter=encounter)
    resource["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": systolic, "unit": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
            "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"},
        },
    ]
    return resource


def procedure(
    pid: str,
    code: tuple[str, str],
    day: str,
    *,
    status: str = "completed",
    body_site: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": _id("proc"),
        "status": status,
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": _ref(pid),
        "performedDateTime": day,
    }
    if body_site:
        resource["bodySite"] = [{"coding": [{"system": SNOMED, "code": body_site}]}]
    return resource


def report(pid: str, code: tuple[str, str], day: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": _id("dr"),
        "status": status,
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": _ref(pid),
        "effectiveDateTime": _instant(day),
    }


def service_request(pid: str, code: tuple[str, str], day: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": _id("sr"),
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": _ref(pid),
        "authoredOn": _instant(day),
    }


def medication_request(pid: str, rxnorm: str, day: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": _id("mr"),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm}]},
        "subject": _ref(pid),
        "authoredOn": _instant(day),
    }


FLAGS = {
    "I": "initial_population",
    "D": "denominator",
    "X": "denominator_exclusion",
    "N": "numerator",
    "E": "denominator_exception",
}


def membership(result: Any) -> dict[str, str]:
    """Each initial-population patient's flags as letters (I D X N E), for comparison."""
    out = {}
    for row in result.members.to_pylist():
        out[row["patient_id"]] = "".join(
            letter for letter, column in FLAGS.items() if row.get(column)
        )
    return out


def expected_counts(expected: Mapping[str, str], columns: Iterable[str]) -> dict[str, int]:
    """Population counts implied by per-patient letters."""
    letters = {column: letter for letter, column in FLAGS.items()}
    return {c: sum(letters[c] in flags for flags in expected.values()) for c in columns}
