"""Shared state of a generation run and of one patient being generated."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from cmio.synth.codes import SPECIALTIES, Specialty
from cmio.synth.ids import Clock, IdMaker
from cmio.synth.system import BASE_URL, Clinician, HealthSystem

__all__ = ["AUDIT_COLUMNS", "DCM", "PatientCtx", "Run"]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_COLUMNS = (
    "user_id", "user_name", "timestamp", "action", "patient_mrn", "activity_class",
    "session_id", "device", "duration_seconds",
)  # fmt: skip
"""Columns of the vendor-style audit log CSV."""


@dataclass(slots=True)
class Run:
    """Per-run constants shared by all patients (built once per process).

    Attributes:
        seed: the run's seed. system: the health system. clock: the calendar.
        specs: specialty key -> Specialty. agents: per clinician, the BALP client,
        server and user agents (shared templates, never mutated).
    """

    seed: int
    system: HealthSystem
    clock: Clock
    specs: dict[str, Specialty] = field(init=False)
    agents: list[tuple[dict[str, Any], ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.specs = {s.key: s for s in SPECIALTIES}
        self.agents = [self._agents(c) for c in self.system.clinicians]

    def _agents(self, c: Clinician) -> tuple[dict[str, Any], ...]:
        client = {
            "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
            "who": {
                "identifier": {"system": f"{BASE_URL}/fhir/sid/workstation", "value": c.device}
            },
            "requestor": False,
            "network": {"address": c.device.lower(), "type": "1"},
        }
        server = {
            "type": {
                "coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]
            },
            "who": {"reference": f"Device/{self.system.ehr_device_id}"},
            "requestor": False,
            "network": {"address": f"{BASE_URL}/fhir", "type": "5"},
        }
        user = {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP",
                        "display": "information recipient",
                    }
                ]
            },
            "who": c.reference,
            "requestor": True,
        }
        author = dict(user)
        author["type"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "AUT",
                    "display": "author (originator)",
                }
            ]
        }
        return (client, server, user, author)


@dataclass(slots=True)
class PatientCtx:
    """One patient's generation state: generator, ids, output buffers.

    Attributes:
        run: the run. rng: the patient's generator. ids: id maker.
        patient_id: Patient id. mrn: MRN. out: resources generated so far.
        audit_rows: vendor audit-log rows generated so far.
    """

    run: Run
    rng: random.Random
    ids: IdMaker
    patient_id: str
    mrn: str
    out: list[dict[str, Any]] = field(default_factory=list)
    audit_rows: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def patient_ref(self) -> dict[str, str]:
        """Reference to the Patient."""
        return {"reference": f"Patient/{self.patient_id}"}
