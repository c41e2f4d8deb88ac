"""Patient/$everything over the Patient compartment: members, outside references, ``_type``,
``_since``, paging (every member once, in a stable order), and the Bundle's bytes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from cmio.api.http import FhirRequest
from cmio.api.ops.everything import _OUTSIDE_REF
from cmio.api.ops.search import searchset_body, splice_entries
from cmio.api.render import bundle_response, dumps, search_entry
from cmio.model import Model
from cmio.store.base import StoredResource, Transaction
from tests.api.conftest import ServerThread
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


def _obs(pid: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
        **extra,
    }


def _pages(client: httpx.Client, url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a ``$everything``, following the ``next`` links."""
    pages = [client.get(url, params=params).json()]
    while nxt := [link["url"] for link in pages[-1]["link"] if link["relation"] == "next"]:
        assert len(pages) < 50
        pages.append(client.get(nxt[0]).json())
    return pages


def _keys(bundle: dict[str, Any], mode: str = "match") -> list[tuple[str, str]]:
    return [
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def test_everything_pages_every_member_once(client: httpx.Client, server: ServerThread) -> None:
    org = create(client, {"resourceType": "Organization", "name": "Clinic"}).json()
    prac = create(client, {"resourceType": "Practitioner", "name": [{"family": "Who"}]}).json()
    p = create(client, patient()).json()
    other = create(client, patient()).json()
    pid = p["id"]
    members: dict[tuple[str, str], dict[str, Any]] = {("Patient", pid): p}
    for i in range(7):
        performer = [{"reference": f"Practitioner/{prac['id']}"}] if i == 3 else []
        o = create(
            client, _obs(pid, f"o{i}", performer=performer) if performer else _obs(pid, f"o{i}")
        ).json()
        members[("Observation", o["id"])] = o
    enc = create(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "serviceProvider": {"reference": f"Organization/{org['id']}"},
        },
    ).json()
    members[("Encounter", enc["id"])] = enc
    gone = create(client, _obs(pid, "deleted")).json()
    assert client.delete(f"/Observation/{gone['id']}").status_code in (200, 204)
    create(client, _obs(other["id"], "not mine"))
    updated = dict(members[next(k for k in members if k[0] == "Observation")])
    updated["status"] = "amended"
    response = client.put(f"/Observation/{updated['id']}", json=updated)
    assert response.status_code == 200, response.text
    members[("Observation", updated["id"])] = response.json()

    url = f"/Patient/{pid}/$everything"
    whole = client.get(url).json()
    assert sorted(_keys(whole)) == sorted(members)
    assert whole["total"] == len(members)
    # each entry is the stored resource, byte for byte as a read answers it
    for entry in whole["entry"]:
        res = entry["resource"]
        read = client.get(f"/{res['resourceType']}/{res['id']}")
        assert orjson.loads(read.content) == res
        assert entry["fullUrl"].endswith(f"/{res['resourceType']}/{res['id']}")
    assert set(_keys(whole, "include")) == {
        ("Organization", org["id"]),
        ("Practitioner", prac["id"]),
    }

    for size in (1, 3, 4, len(members)):
        pages = _pages(client, url, {"_count": size})
        order = [key for page in pages for key in _keys(page)]
        assert len(order) == len(set(order)) == len(members)  # every member exactly once
        assert set(order) == set(members)
        assert all(page["total"] == len(members) for page in pages)
        assert all(len(_keys(page)) <= size for page in pages)
        # the order is the store's and stable: the whole list in the same order
        assert order == _keys(whole)
        again = [key for page in _pages(client, url, {"_count": size}) for key in _keys(page)]
        assert again == order

    typed = _pages(client, url, {"_type": "Observation,Encounter", "_count": 2})
    keys = [key for page in typed for key in _keys(page)]
    assert sorted(keys) == sorted(k for k in members if k[0] in ("Observation", "Encounter"))
    assert typed[0]["total"] == len(keys)

    instants = sorted(m["meta"]["lastUpdated"] for m in members.values())
    since = instants[len(instants) // 2]
    recent = _pages(client, url, {"_since": since, "_count": 2})
    keys = [key for page in recent for key in _keys(page)]
    assert sorted(keys) == sorted(
        k for k, m in members.items() if m["meta"]["lastUpdated"] >= since
    )
    assert recent[0]["total"] == len(keys)

    assert client.get(url, params={"_since": "yesterday"}).status_code == 400
    assert client.get(url, params={"_type": ","}).status_code == 400

    # the store's row form equals its object form: same members, order, totals
    repository = server.app.env.repository
    with repository.read_transaction() as tx:
        for types, count, offset in ((None, 50, 0), (None, 3, 3), (("Observation",), 2, 0)):
            page = tx.compartment("Patient", pid, types=types, count=count, offset=offset)
            rows, total = tx.compartment_rows(
                "Patient", pid, types=types, count=count, offset=offset
            )
            assert rows == [(s.type, s.id, s.data) for s in page.resources]
            assert total == page.total
            # the defaults a backend without SQL would inherit agree
            derived = Transaction.compartment_rows(
                tx, "Patient", pid, types=types, count=count, offset=offset
            )
            assert derived == (rows, total)
            searched = Transaction.compartment(tx, "Patient", pid, types=types)
            assert searched.total == total
        whole_rows, _ = tx.compartment_rows("Patient", pid)
        searched = Transaction.compartment(tx, "Patient", pid)
        assert sorted((s.type, s.id, s.data) for s in searched.resources) == sorted(whole_rows)
        keys = [("Organization", org["id"]), ("Observation", gone["id"]), ("Patient", "nobody")]
        keys += [("Practitioner", prac["id"]), ("Observation", updated["id"])]
        current = tx.read_current(keys)
        assert current == [tx.read(*key) for key in (keys[0], keys[3], keys[4])]
        assert Transaction.read_current(tx, keys) == current
        assert tx.read_current([]) == []


def test_searchset_body_equals_the_renderer(model: Model) -> None:
    request = FhirRequest("GET", "Patient", [], base_url='http://h/fhir"x')
    stored = [
        StoredResource("Patient", f"p{i}", 1, "2026-01-01T00:00:00.000Z", False, data)
        for i, data in enumerate(
            [
                b'{"resourceType":"Patient","id":"p0"}',
                b'{"resourceType":"Patient","id":"p1","x":"\\u00e9"}',
            ]
        )
    ]
    extra = [b'{"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}}']
    head = {"resourceType": "Bundle", "type": "searchset", "total": 2, "link": []}
    for matches, included, outcome in (
        (stored, stored[:1], extra),
        (stored, [], []),
        ([], stored, []),
        ([], [], extra),
        ([], [], []),
    ):
        entries = [search_entry(request, model, s, "match") for s in matches]
        entries += [search_entry(request, model, s, "include") for s in included]
        entries += outcome
        expected = bundle_response(request, dict(head), entries).body
        assert searchset_body(request.base_url, dict(head), matches, included, outcome) == expected
        if not outcome:  # $everything's own join, over (type, id, data) rows
            rows = [(s.type, s.id, s.data or b"") for s in matches]
            extra_rows = [(s.type, s.id, s.data or b"") for s in included]
            assert splice_entries(dumps(head), request.base_url, rows, extra_rows) == expected


def test_outside_references_match_the_plain_pattern() -> None:
    plain = re.compile(
        rb'"reference":"((?:Practitioner|PractitionerRole|Organization|Location|Medication'
        rb'|Device|Substance|HealthcareService)/[A-Za-z0-9.\-]{1,64})"'
    )
    data = b"\n".join(
        [
            b'{"a":{"reference":"Practitioner/p1"},"b":{"reference":"Patient/x"}}',
            b'{"preference":"Practitioner/p2","xreference":"Location/l1","ference":"Device/d0"}',
            b'{"note":"\\"reference\\":\\"Organization/o9\\"","c":{"reference":"Device/d1"}}',
            b'{"reference":"PractitionerRole/r1","x":{"reference":"Organization/'
            + b"o" * 65
            + b'"}}',
            b'{"reference":"Medication/m.1-2"}{"reference":"Location/"}{"reference":"Device/d1"}',
        ]
    )
    assert _OUTSIDE_REF.findall(data) == plain.findall(data)
    assert _OUTSIDE_REF.findall(data) == [
        b"Practitioner/p1",
        b"Device/d1",
        b"PractitionerRole/r1",
        b"Medication/m.1-2",
        b"Device/d1",
    ]
