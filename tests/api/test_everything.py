"""Patient/$everything over the Patient compartment."""

from __future__ import annotations

import httpx

from tests.api.test_crud import create, patient


def test_everything(client: httpx.Client) -> None:
    org = create(client, {"resourceType": "Organization", "name": "Clinic"}).json()
    p = create(
        client, patient(managingOrganization={"reference": f"Organization/{org['id']}"})
    ).json()
    other = create(client, patient()).json()
    ref = {"reference": f"Patient/{p['id']}"}
    enc = create(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": ref,
        },
    ).json()
    obs = [
        create(
            client,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": str(i)},
                "subject": ref,
            },
        ).json()
        for i in range(3)
    ]
    allergy = create(
        client,
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "patient": ref,
        },
    ).json()
    create(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "not mine"},
            "subject": {"reference": f"Patient/{other['id']}"},
        },
    )
    bundle = client.get(f"/Patient/{p['id']}/$everything").json()
    matches = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "match"
    }
    expected = {
        ("Patient", p["id"]),
        ("Encounter", enc["id"]),
        ("AllergyIntolerance", allergy["id"]),
    }
    expected |= {("Observation", o["id"]) for o in obs}
    assert matches == expected
    assert bundle["total"] == len(expected)
    includes = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }
    assert includes == {("Organization", org["id"])}
    typed = client.get(f"/Patient/{p['id']}/$everything", params={"_type": "Observation"}).json()
    assert {e["resource"]["id"] for e in typed["entry"] if e["search"]["mode"] == "match"} == {
        o["id"] for o in obs
    }
    paged = client.get(f"/Patient/{p['id']}/$everything", params={"_count": 2}).json()
    assert len([e for e in paged["entry"] if e["search"]["mode"] == "match"]) == 2
    assert any(link["relation"] == "next" for link in paged["link"])
    assert client.get("/Patient/nobody/$everything").status_code == 404
