"""The mixed clinical workload: seed data, the interaction mix, and the requests it sends.

70% reads and searches (patient read, search by name and by identifier, a patient's
Observations by code, ``$everything`` now and then), 20% creates and updates, 10%
transaction Bundles (a new patient with an encounter and three observations).
FHIR interactions: https://hl7.org/fhir/R4/http.html .
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MIX", "Request", "Seed", "build_request", "load_seed", "seed_bundles"]

MIX: dict[str, int] = {
    "read": 30,
    "search-name": 12,
    "search-identifier": 10,
    "search-observation": 15,
    "everything": 3,
    "create": 12,
    "update": 8,
    "transaction": 10,
}
"""Interaction weights (percent): 70 reads/searches, 20 creates/updates, 10 transactions."""

VITALS = (
    ("8867-4", "Heart rate", "/min", 50, 110),
    ("9279-1", "Respiratory rate", "/min", 10, 24),
    ("8310-5", "Body temperature", "Cel", 36, 39),
    ("29463-7", "Body weight", "kg", 40, 120),
)


@dataclass(slots=True)
class Request:
    """One HTTP request of the workload (path below the server root)."""

    interaction: str
    method: str
    path: str
    body: bytes | None = None


@dataclass(slots=True)
class Seed:
    """What the workload reads and updates: the seeded patients and their observation codes."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, list[str]] = field(default_factory=dict)

    def family(self, patient: dict[str, Any]) -> str:
        """The patient's first family name (searched by ``name``)."""
        return str((patient.get("name") or [{}])[0].get("family", "x"))

    def identifier(self, patient: dict[str, Any]) -> tuple[str, str] | None:
        """The patient's first identifier with a system, as (system, value)."""
        for ident in patient.get("identifier") or []:
            if ident.get("system") and ident.get("value"):
                return str(ident["system"]), str(ident["value"])
        return None


def load_seed(folder: Path, limit: int = 5000) -> Seed:
    """Seed data from an NDJSON folder (``cmio synth``'s output): patients and their codes."""
    seed = Seed()
    with (folder / "Patient.ndjson").open() as lines:
        for line in lines:
            if line.strip():
                seed.patients.append(json.loads(line))
            if len(seed.patients) >= limit:
                break
    wanted = {p["id"] for p in seed.patients}
    observations = folder / "Observation.ndjson"
    if observations.exists():
        with observations.open() as lines:
            for line in lines:
                obs = json.loads(line)
                ref = (obs.get("subject") or {}).get("reference", "")
                pid = ref.removeprefix("Patient/")
                for coding in (obs.get("code") or {}).get("coding") or []:
                    if pid in wanted and coding.get("system") == "http://loinc.org":
                        codes = seed.codes.setdefault(pid, [])
                        if coding["code"] not in codes:
                            codes.append(coding["code"])
    if not seed.patients:
        raise ValueError(f"{folder}: no patients in Patient.ndjson")
    return seed


def seed_bundles(count: int, rng: random.Random) -> Seed:
    """A small seed made here (for tests): ``count`` patients with vital-sign codes."""
    seed = Seed()
    for i in range(count):
        pid = f"load-{i:05d}-{rng.randrange(1 << 30):08x}"
        seed.patients.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": "urn:cmio:load:mrn", "value": f"MRN{i:06d}"}],
                "name": [{"family": f"Loadtest{i % 50}", "given": ["Pat"]}],
                "gender": "female" if i % 2 else "male",
                "birthDate": f"19{50 + i % 50}-01-01",
            }
        )
        seed.codes[pid] = [code for code, *_ in VITALS]
    return seed


def _observation(rng: random.Random, subject: str, encounter: str | None = None) -> dict[str, Any]:
    code, display, unit, low, high = rng.choice(VITALS)
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": subject},
        "effectiveDateTime": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    if encounter:
        obs["encounter"] = {"reference": encounter}
    return obs


def _transaction(rng: random.Random) -> dict[str, Any]:
    patient, encounter = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:cmio:load:mrn", "value": uuid.uuid4().hex[:12]}],
                "name": [{"family": "Admitted", "given": [f"P{rng.randrange(10_000)}"]}],
                "gender": rng.choice(("male", "female")),
                "birthDate": f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": encounter,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": patient},
                "period": {"start": "2026-01-02T09:00:00Z", "end": "2026-01-02T09:30:00Z"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ]
    for _ in range(3):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _observation(rng, patient, encounter),
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def build_request(interaction: str, seed: Seed, rng: random.Random) -> Request:
    """The next request of ``interaction`` (https://hl7.org/fhir/R4/http.html)."""
    patient = rng.choice(seed.patients)
    pid = patient["id"]
    if interaction == "read":
        return Request(interaction, "GET", f"/fhir/Patient/{pid}")
    if interaction == "search-name":
        return Request(interaction, "GET", f"/fhir/Patient?name={seed.family(patient)}&_count=20")
    if interaction == "search-identifier":
        ident = seed.identifier(patient)
        if ident is None:
            return Request(interaction, "GET", f"/fhir/Patient?_id={pid}")
        return Request(interaction, "GET", f"/fhir/Patient?identifier={ident[0]}|{ident[1]}")
    if interaction == "search-observation":
        code = rng.choice(seed.codes.get(pid) or ["8867-4"])
        return Request(
            interaction,
            "GET",
            f"/fhir/Observation?subject=Patient/{pid}&code=http://loinc.org|{code}&_count=50",
        )
    if interaction == "everything":
        return Request(interaction, "GET", f"/fhir/Patient/{pid}/$everything?_count=100")
    if interaction == "create":
        body = _observation(rng, f"Patient/{pid}")
        return Request(interaction, "POST", "/fhir/Observation", json.dumps(body).encode())
    if interaction == "update":
        body = dict(patient)
        body.pop("meta", None)
        body["telecom"] = [{"system": "phone", "value": f"555-{rng.randrange(10_000):04d}"}]
        return Request(interaction, "PUT", f"/fhir/Patient/{pid}", json.dumps(body).encode())
    if interaction == "transaction":
        return Request(interaction, "POST", "/fhir", json.dumps(_transaction(rng)).encode())
    raise ValueError(f"unknown interaction {interaction!r}")
