"""Search over HTTP: typed parameters, errors, lenient handling, includes, sorting.

https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def _put(client: httpx.Client, resource: dict[str, Any]) -> None:
    response = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _data(client: httpx.Client) -> str:
    tag = uuid.uuid4().hex[:8]
    _put(client, {"resourceType": "Organization", "id": f"org-{tag}", "name": f"Clinic {tag}"})
    _put(
        client,
        {
            "resourceType": "Practitioner",
            "id": f"dr-{tag}",
            "name": [{"family": f"House{tag}"}],
        },
    )
    for i, (family, birth) in enumerate((("Smith", "1950-05-01"), ("Smythe", "1970-01-01"))):
        _put(
            client,
            {
                "resourceType": "Patient",
                "id": f"p{i}-{tag}",
                "name": [{"family": f"{family}{tag}", "given": ["Zoë"]}],
                "birthDate": birth,
                "managingOrganization": {"reference": f"Organization/org-{tag}"},
                "generalPractitioner": [{"reference": f"Practitioner/dr-{tag}"}],
            },
        )
    for i, (value, day) in enumerate(
        ((7.2, "2024-02-01"), (5.1, "2024-03-01"), (6.0, "2023-01-01"))
    ):
        _put(
            client,
            {
                "resourceType": "Observation",
                "id": f"o{i}-{tag}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                "subject": {"reference": f"Patient/p{i % 2}-{tag}"},
                "effectiveDateTime": day,
                "valueQuantity": {
                    "value": value,
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            },
        )
    return tag


def test_typed_parameters_sort_and_chain(client: httpx.Client) -> None:
    tag = _data(client)
    names = client.get("/Patient", params={"name": f"smith{tag}"}).json()
    assert _ids(names) == [f"p0-{tag}"]
    accent = client.get("/Patient", params={"given": "zoe", "family": f"sm{tag}"}).json()
    assert accent["total"] == 0
    by_date = client.get(
        "/Observation",
        params={
            "subject": f"Patient/p0-{tag}",
            "date": "ge2023-06-01",
            "_sort": "-date",
        },
    ).json()
    assert _ids(by_date) == [f"o0-{tag}"]
    sorted_obs = client.get(
        "/Observation", params={"subject:Patient.name": f"smith{tag},smythe{tag}", "_sort": "-date"}
    ).json()
    assert _ids(sorted_obs) == [f"o1-{tag}", f"o0-{tag}", f"o2-{tag}"]
    by_value = client.get(
        "/Observation",
        params={"value-quantity": "gt6|http://unitsofmeasure.org|%", "patient.name": f"smith{tag}"},
    ).json()
    assert _ids(by_value) == [f"o0-{tag}"]
    deep = client.get(
        "/Observation", params={"patient.general-practitioner.name": f"house{tag}", "_sort": "date"}
    ).json()
    assert _ids(deep) == [f"o2-{tag}", f"o0-{tag}", f"o1-{tag}"]
    has = client.get(
        "/Patient",
        params={"_has:Observation:patient:date": "lt2023-06-01", "name": f"smith{tag}"},
    ).json()
    assert _ids(has) == [f"p0-{tag}"]
    post = client.post(
        "/Patient/_search",
        content=f"name=smythe{tag}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ).json()
    assert _ids(post) == [f"p1-{tag}"]


def test_include_and_revinclude(client: httpx.Client) -> None:
    tag = _data(client)
    inc = client.get(
        "/Observation",
        params={"_id": f"o0-{tag}", "_include": "Observation:patient"},
    ).json()
    assert _ids(inc) == [f"o0-{tag}"]
    assert _ids(inc, "include") == [f"p0-{tag}"]
    iterate = client.get(
        "/Observation",
        params=[
            ("_id", f"o0-{tag}"),
            ("_include", "Observation:patient"),
            ("_include:iterate", "Patient:organization"),
        ],
    ).json()
    assert sorted(_ids(iterate, "include")) == [f"org-{tag}", f"p0-{tag}"]
    rev = client.get(
        "/Patient", params={"_id": f"p1-{tag}", "_revinclude": "Observation:subject"}
    ).json()
    assert _ids(rev) == [f"p1-{tag}"]
    assert _ids(rev, "include") == [f"o1-{tag}"]


def test_unknown_and_malformed_parameters(client: httpx.Client) -> None:
    for params in (
        {"favourite-colour": "red"},
        {"name:sounds-like": "x"},
        {"subject.nonsense": "x"},
        {"_has:Observation:nonsense:code": "x"},
        {"_sort": "nonsense"},
        {"_include": "Observation:nonsense"},
    ):
        response = client.get(
            "/Observation" if "subject" in str(params) else "/Patient", params=params
        )
        assert response.status_code == 400, params
        issue = response.json()["issue"][0]
        assert issue["expression"] == [next(iter(params))], params
    bad_date = client.get("/Patient", params={"birthdate": "ge20x"})
    assert bad_date.status_code == 400
    lenient = client.get(
        "/Patient",
        params={"favourite-colour": "red", "_count": "1"},
        headers={"prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "favourite-colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    terminology = client.get("/Observation", params={"code:in": "http://vs"})
    assert terminology.status_code == 400


def test_compartment_search(client: httpx.Client) -> None:
    tag = _data(client)
    found = client.get(f"/Patient/p0-{tag}/Observation", params={"date": "ge2023-06-01"}).json()
    assert _ids(found) == [f"o0-{tag}"]
    every = client.get(f"/Patient/p0-{tag}/Observation", params={"_sort": "date"}).json()
    assert _ids(every) == [f"o2-{tag}", f"o0-{tag}"]
    other = client.get(f"/Encounter/e-{tag}/Observation")
    assert other.status_code == 200 and _ids(other.json()) == []
    by_gp = client.get(f"/Practitioner/dr-{tag}/Patient", params={"_sort": "_id"}).json()
    assert _ids(by_gp) == [f"p0-{tag}", f"p1-{tag}"]
    not_one = client.get(f"/Organization/org-{tag}/Patient")
    assert not_one.status_code == 400


def test_paging_links_survive_concurrent_writes(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [f"pg{i}-{tag}" for i in range(7)]
    for pid in ids:
        _put(client, {"resourceType": "Patient", "id": pid, "name": [{"family": f"Page{tag}"}]})
    accurate = {"family": f"page{tag}", "_count": "3", "_total": "accurate"}
    first = client.get("/Patient", params=accurate).json()
    assert first["total"] == 7
    seen = _ids(first)
    # writes after the first page: two new matches and an update of a first-page entry
    for extra in ("x1", "x2"):
        _put(
            client,
            {"resourceType": "Patient", "id": f"{extra}-{tag}", "name": [{"family": f"Page{tag}"}]},
        )
    _put(
        client,
        {
            "resourceType": "Patient",
            "id": seen[0],
            "name": [{"family": f"Page{tag}"}],
            "gender": "other",
        },
    )
    bundle = first
    while True:
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = client.get(nxt[0].split("/fhir", 1)[1]).json()
        # counted in the first page's snapshot: the entry updated since is newer
        assert bundle["total"] == 6
        seen += _ids(bundle)
    assert sorted(seen) == sorted(ids)  # none repeated, none skipped, no later creations
    fresh = client.get("/Patient", params=accurate).json()
    assert fresh["total"] == 9


def test_total_estimate(client: httpx.Client) -> None:
    tag = _data(client)
    small = client.get(
        "/Observation",
        params={
            "code": "4548-4",
            "_total": "estimate",
            "_count": "2",
            "subject": f"Patient/p0-{tag}",
        },
    ).json()
    assert small["total"] == 2 and len(small["entry"]) == 2
    last = client.get(
        "/Patient", params={"family:contains": tag, "_total": "estimate", "_count": "10"}
    ).json()
    assert last["total"] == 2
    none = client.get("/Patient", params={"family:contains": tag, "_total": "none"}).json()
    assert "total" not in none


def test_total_without_total_parameter(client: httpx.Client) -> None:
    """Without ``_total`` the total is given only when known without counting
    (search.html#total); ``_total=accurate`` always counts; the CapabilityStatement says so."""
    tag = uuid.uuid4().hex[:8]
    for i in range(5):
        _put(client, {"resourceType": "Patient", "id": f"t{i}-{tag}", "name": [{"family": tag}]})

    def get(**params: str) -> dict[str, Any]:
        found: dict[str, Any] = client.get("/Patient", params={"family": tag, **params}).json()
        return found

    def has_next(bundle: dict[str, Any]) -> bool:
        return any(link["relation"] == "next" for link in bundle["link"])

    full = get(_count="2")  # a full page: no count statement, no total, a next link
    assert "total" not in full and len(full["entry"]) == 2 and has_next(full)
    assert "total" not in get(_count="5")  # exactly full: whether more follow is not known
    assert get(_count="10")["total"] == 5  # not full: the matches are on the page
    last = get(_count="2", _offset="4")  # the last page, after others: offset + page
    assert last["total"] == 5 and len(last["entry"]) == 1 and not has_next(last)
    assert "total" not in get(_count="2", _offset="2")  # full, in the middle
    assert get(_count="0")["total"] == 5  # only the count asked for
    assert get(_summary="count")["total"] == 5
    assert get(_count="2", _total="accurate")["total"] == 5
    assert get(_count="2", _total="estimate")["total"] == 5
    assert "total" not in get(_count="10", _total="none")
    seen: list[str] = []  # the next links page through every match, keyset included
    bundle = full
    while True:
        seen += _ids(bundle)
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = client.get(nxt[0].split("/fhir", 1)[1]).json()
    assert sorted(seen) == sorted(f"t{i}-{tag}" for i in range(5))
    rest = client.get("/metadata").json()["rest"][0]
    assert "_total=accurate" in rest["documentation"]
