"""The fhirpy client library used as an application would use it."""

from __future__ import annotations

import uuid

from fhirpy import SyncFHIRClient

from tests.api.conftest import ServerThread


def test_fhirpy_roundtrip(server: ServerThread) -> None:
    client = SyncFHIRClient(server.base, extra_headers={"accept": "application/fhir+json"})
    mrn = uuid.uuid4().hex
    pat = client.resource(
        "Patient",
        identifier=[{"system": "urn:mrn", "value": mrn}],
        name=[{"family": "Lovelace", "given": ["Ada"]}],
    )
    pat.save()
    assert pat.id
    fetched = client.reference("Patient", pat.id).to_resource()
    assert fetched["name"][0]["family"] == "Lovelace"
    fetched["gender"] = "female"
    fetched.save()
    again = client.resources("Patient").search(identifier=f"urn:mrn|{mrn}").first()
    assert again is not None
    assert again["gender"] == "female"
    assert again["meta"]["versionId"] == "2"
    again.delete()
    assert client.resources("Patient").search(identifier=f"urn:mrn|{mrn}").count() == 0
