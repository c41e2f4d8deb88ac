"""An auth-enabled server with the starter CDS services and hand-written patients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from cmio.api.app import CmioApp
from cmio.api.env import Settings
from cmio.cds import install_starter_services
from cmio.model import Model, load_model
from cmio.testing.auth import auth_app, mint_token
from cmio.testing.server import ServerThread

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def med(rid: str, pid: str, code: str, name: str, days_ago: int, status: str = "active") -> dict[str, Any]:  # fmt: skip
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": ago(days_ago),
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": name}]
        },
    }


def bp(rid: str, pid: str, systolic: int, diastolic: int, days_ago: int) -> dict[str, Any]:
    def part(code: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {
                "value": value,
                "unit": "mm[Hg]",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        }

    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": ago(days_ago),
        "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }


def a1c(rid: str, pid: str, days_ago: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": ago(days_ago),
        "valueQuantity": {
            "value": 7.2,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }


def diabetes(rid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": SNOMED, "code": "44054006"}]},
    }


def patient(pid: str, gender: str = "female", born: str = "1960-03-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": born}


def visit(pid: str) -> dict[str, Any]:
    day = date(datetime.now(UTC).year, 2, 1).isoformat()
    return {
        "resourceType": "Encounter",
        "id": f"visit-{pid}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T10:30:00Z"},
    }


RESOURCES: list[dict[str, Any]] = [
    patient("dm-overdue"), diabetes("c1", "dm-overdue"), a1c("o1", "dm-overdue", 240),
    patient("dm-recent"), diabetes("c2", "dm-recent"), a1c("o2", "dm-recent", 30),
    patient("healthy", "male", "1990-01-01"),
    patient("htn-stale"), bp("b1", "htn-stale", 152, 94, 3),
    med("m1", "htn-stale", "29046", "lisinopril", 200),
    patient("htn-changed"), bp("b2", "htn-changed", 152, 94, 3),
    med("m2", "htn-changed", "29046", "lisinopril", 30),
    patient("htn-ok"), bp("b3", "htn-ok", 128, 80, 3), med("m3", "htn-ok", "29046", "lisinopril", 200),
    patient("screen"), visit("screen"),
    {"resourceType": "AllergyIntolerance", "id": "al1", "patient": {"reference": "Patient/healthy"},
     "code": {"coding": [{"system": RXNORM, "code": "7980", "display": "penicillin G"}]}},
]  # fmt: skip


@dataclass
class Cds:
    app: CmioApp
    server: ServerThread
    client_key: RSAKey
    client_issuer: str

    @property
    def root(self) -> str:
        return self.server.base.removesuffix("/fhir")

    def token(self, base: str | None = None) -> str:
        return mint_token(self.app, base or self.server.base, scopes=["user/*.rs"])

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token()}"}


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def cds(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[Cds]:
    folder = tmp_path_factory.mktemp("cds")
    client_key = RSAKey.generate_key(2048, parameters={"kid": "client-1", "alg": "RS384"})
    trusted = folder / "cds-clients.json"
    issuer = "https://ehr.example.org"
    trusted.write_text(json.dumps({issuer: {"keys": [client_key.as_dict(private=False)]}}))
    settings = Settings(validation="off", terminology_db=None, cds_clients=str(trusted))
    app = auth_app(f"sqlite:///{folder / 'cmio.db'}", folder, model=model, settings=settings)
    repository = app.env.repository
    with repository.transaction() as tx:
        for resource in RESOURCES:
            tx.create(dict(resource), id=resource["id"])
    install_starter_services(repository)
    with ServerThread(app, close_app=True) as server:
        yield Cds(app, server, client_key, issuer)
