"""Generate a realistic, deterministic FHIR R4 NDJSON data set for import benchmarks.

Writes Bulk Data layout files (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#file-format)
into a folder: ``Organization.ndjson``, ``Practitioner.ndjson``, ``Patient.ndjson``,
``Encounter.ndjson``, ``Condition.ndjson`` and ``Observation.ndjson``. Like Synthea's
bulk output, Encounters point at their Practitioner and Organization with
*conditional* references (``Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|...``)
and at the Patient with a literal ``Patient/<id>``; Observations and Conditions
reference their Patient and Encounter. The same seed gives the same bytes.

Usage::

    python bench/gen_ndjson.py OUT_DIR [--resources 200000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["generate"]

NPI = "http://hl7.org/fhir/sid/us-npi"
ORG_SYSTEM = "https://example.org/fhir/sid/organization"
# resources per patient: 1 Patient + 12 Encounter + 4 Condition + 48 Observation
ENCOUNTERS, CONDITIONS, OBS_PER_ENCOUNTER = 12, 4, 4
PER_PATIENT = 1 + ENCOUNTERS + CONDITIONS + ENCOUNTERS * OBS_PER_ENCOUNTER
VITALS = (
    ("8302-2", "Body Height", "cm", 150.0, 200.0),
    ("29463-7", "Body Weight", "kg", 45.0, 120.0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 17.0, 38.0),
    ("8867-4", "Heart rate", "/min", 50.0, 110.0),
    ("9279-1", "Respiratory rate", "/min", 11.0, 22.0),
    ("2339-0", "Glucose", "mg/dL", 65.0, 180.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140.0, 280.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11.0, 17.5),
)
CONDITIONS_SCT = (
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
)
ENCOUNTER_TYPES = (
    ("185349003", "Encounter for check up (procedure)", "AMB"),
    ("185345009", "Encounter for symptom (procedure)", "AMB"),
    ("50849002", "Emergency room admission (procedure)", "EMER"),
    ("183452005", "Emergency hospital admission (procedure)", "IMP"),
)
GIVEN = (
    "Alva",
    "Brent",
    "Carla",
    "Dennis",
    "Eugenia",
    "Fabian",
    "Giovanni",
    "Hong",
    "Isaura",
    "Judson",
)
FAMILY = (
    "Abshire",
    "Bode",
    "Conroy",
    "Dietrich",
    "Eichmann",
    "Fay",
    "Graham",
    "Hayes",
    "Lang",
    "Rath",
)
CITIES = (("Boston", "MA", "02108"), ("Worcester", "MA", "01601"), ("Springfield", "MA", "01103"))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _organization(i: int, rng: random.Random) -> dict[str, Any]:
    city, state, postal = CITIES[i % len(CITIES)]
    return {
        "resourceType": "Organization",
        "id": _uuid(rng),
        "identifier": [{"system": ORG_SYSTEM, "value": f"org-{i:05d}"}],
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                        "display": "Healthcare Provider",
                    }
                ],
                "text": "Healthcare Provider",
            }
        ],
        "name": f"{city.upper()} GENERAL HOSPITAL {i}",
        "telecom": [{"system": "phone", "value": f"617-555-{i % 10000:04d}"}],
        "address": [
            {
                "line": [f"{100 + i} MAIN ST"],
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": "US",
            }
        ],
    }


def _practitioner(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": _uuid(rng),
        "identifier": [{"system": NPI, "value": f"99999{i:05d}"}],
        "active": True,
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Dr."]}],
        "gender": rng.choice(("male", "female")),
    }


def _patient(pid: str, rng: random.Random, birth: datetime) -> dict[str, Any]:
    city, state, postal = rng.choice(CITIES)
    family, given = rng.choice(FAMILY), rng.choice(GIVEN)
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": "https://example.org/fhir/sid/mrn", "value": pid[:8]}],
        "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Mx."]}],
        "telecom": [{"system": "phone", "value": f"555-{rng.randrange(10000):04d}", "use": "home"}],
        "gender": rng.choice(("male", "female")),
        "birthDate": birth.strftime("%Y-%m-%d"),
        "address": [
            {
                "line": [f"{rng.randrange(1, 999)} Elm St"],
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": "US",
            }
        ],
        "maritalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                    "code": "M",
                    "display": "Married",
                }
            ],
            "text": "Married",
        },
        "communication": [
            {
                "language": {
                    "coding": [
                        {"system": "urn:ietf:bcp:47", "code": "en-US", "display": "English"}
                    ],
                    "text": "English",
                }
            }
        ],
    }


def generate(out_dir: str | Path, resources: int = 200_000, seed: int = 7) -> dict[str, int]:
    """Write about ``resources`` resources as NDJSON into ``out_dir``; returns counts per type."""
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    patients = max(1, resources // PER_PATIENT)
    n_org = max(1, patients // 50)
    n_prac = max(1, patients // 10)
    counts: dict[str, int] = {}
    files: dict[str, IO[bytes]] = {}

    def emit(resource: dict[str, Any]) -> None:
        rtype = resource["resourceType"]
        fh = files.get(rtype)
        if fh is None:
            fh = files[rtype] = (out / f"{rtype}.ndjson").open("wb")
        fh.write(orjson.dumps(resource) + b"\n")
        counts[rtype] = counts.get(rtype, 0) + 1

    try:
        for i in range(n_org):
            emit(_organization(i, rng))
        for i in range(n_prac):
            emit(_practitioner(i, rng))
        epoch = datetime(2010, 1, 1, tzinfo=UTC)
        for _ in range(patients):
            pid = _uuid(rng)
            birth = datetime(1930, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(30000))
            emit(_patient(pid, rng, birth))
            org = rng.randrange(n_org)
            conditions = rng.sample(CONDITIONS_SCT, min(CONDITIONS, len(CONDITIONS_SCT)))
            start = epoch + timedelta(days=rng.randrange(3000))
            for e in range(ENCOUNTERS):
                eid = _uuid(rng)
                start += timedelta(days=rng.randrange(10, 120), minutes=rng.randrange(600))
                end = start + timedelta(minutes=15 + rng.randrange(120))
                code, display, klass = rng.choice(ENCOUNTER_TYPES)
                emit(
                    {
                        "resourceType": "Encounter",
                        "id": eid,
                        "identifier": [
                            {
                                "use": "official",
                                "system": "https://example.org/fhir/sid/encounter",
                                "value": eid,
                            }
                        ],
                        "status": "finished",
                        "class": {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": klass,
                        },
                        "type": [
                            {
                                "coding": [
                                    {
                                        "system": "http://snomed.info/sct",
                                        "code": code,
                                        "display": display,
                                    }
                                ],
                                "text": display,
                            }
                        ],
                        "subject": {"reference": f"Patient/{pid}"},
                        "participant": [
                            {
                                "type": [
                                    {
                                        "coding": [
                                            {
                                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                "code": "PPRF",
                                                "display": "primary performer",
                                            }
                                        ]
                                    }
                                ],
                                "individual": {
                                    "reference": f"Practitioner?identifier={NPI}|99999{rng.randrange(n_prac):05d}"
                                },
                            }
                        ],
                        "period": {"start": _instant(start), "end": _instant(end)},
                        "serviceProvider": {
                            "reference": f"Organization?identifier={ORG_SYSTEM}|org-{org:05d}"
                        },
                    }
                )
                if e < CONDITIONS:
                    ccode, cdisplay = conditions[e]
                    emit(
                        {
                            "resourceType": "Condition",
                            "id": _uuid(rng),
                            "clinicalStatus": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        "code": "active",
                                    }
                                ]
                            },
                            "verificationStatus": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                        "code": "confirmed",
                                    }
                                ]
                            },
                            "category": [
                                {
                                    "coding": [
                                        {
                                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                            "code": "encounter-diagnosis",
                                            "display": "Encounter Diagnosis",
                                        }
                                    ]
                                }
                            ],
                            "code": {
                                "coding": [
                                    {
                                        "system": "http://snomed.info/sct",
                                        "code": ccode,
                                        "display": cdisplay,
                                    }
                                ],
                                "text": cdisplay,
                            },
                            "subject": {"reference": f"Patient/{pid}"},
                            "encounter": {"reference": f"Encounter/{eid}"},
                            "onsetDateTime": _instant(start),
                            "recordedDate": _instant(start),
                        }
                    )
                for loinc, text, unit, low, high in rng.sample(VITALS, OBS_PER_ENCOUNTER):
                    emit(
                        {
                            "resourceType": "Observation",
                            "id": _uuid(rng),
                            "status": "final",
                            "category": [
                                {
                                    "coding": [
                                        {
                                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                            "code": "vital-signs",
                                            "display": "Vital signs",
                                        }
                                    ]
                                }
                            ],
                            "code": {
                                "coding": [
                                    {"system": "http://loinc.org", "code": loinc, "display": text}
                                ],
                                "text": text,
                            },
                            "subject": {"reference": f"Patient/{pid}"},
                            "encounter": {"reference": f"Encounter/{eid}"},
                            "effectiveDateTime": _instant(start),
                            "issued": start.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
                            "valueQuantity": {
                                "value": round(rng.uniform(low, high), 1),
                                "unit": unit,
                                "system": "http://unitsofmeasure.org",
                                "code": unit,
                            },
                        }
                    )
    finally:
        for fh in files.values():
            fh.close()
    return counts


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(args.out_dir, args.resources, args.seed)
    print(f"{sum(counts.values())} resources: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
