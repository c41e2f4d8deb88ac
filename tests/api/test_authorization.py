"""The authorization matrix over HTTP: each role and scope set x each interaction x
own/other patient, against an auth-enabled server with signed tokens.

The fixture: patients p1 (own: general practitioner ``Practitioner/doc``) and p2
(other: seen only by ``Practitioner/other-doc``), their Observations (o1 laboratory
and o2 vital signs of p1, o3 laboratory of p2), an Encounter e2 of p2, Conditions c1/c2,
a summary and an individual MeasureReport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmio.api.app import CmioApp
from cmio.model import Model
from cmio.testing.auth import auth_app, bearer, mint_token
from cmio.testing.server import ServerThread

CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB_SCOPE = f"patient/Observation.rs?category={CAT}|laboratory"


def _obs(rid: str, patient: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": CAT, "code": category}]}],
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{patient}"},
    }


def _condition(rid: str | None, patient: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "code": {"text": "asthma"},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if rid is not None:
        out["id"] = rid
    return out


def _report(rid: str, patient: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": rid,
        "status": "complete",
        "type": "individual" if patient else "summary",
        "measure": "http://example.org/Measure/m",
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
    }
    if patient:
        out["subject"] = {"reference": f"Patient/{patient}"}
    return out


FIXTURE: list[dict[str, Any]] = [
    {"resourceType": "Practitioner", "id": "doc"},
    {"resourceType": "Practitioner", "id": "other-doc"},
    {
        "resourceType": "Patient",
        "id": "p1",
        "generalPractitioner": [{"reference": "Practitioner/doc"}],
    },
    {"resourceType": "Patient", "id": "p2"},
    {
        "resourceType": "Encounter",
        "id": "e2",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p2"},
        "participant": [{"individual": {"reference": "Practitioner/other-doc"}}],
    },
    _obs("o1", "p1", "laboratory"),
    _obs("o2", "p1", "vital-signs"),
    _obs("o3", "p2", "laboratory"),
    _condition("c1", "p1"),
    _condition("c2", "p2"),
    _report("summary", None),
    _report("individual", "p1"),
]

# Who asks: token claims (scopes default to the roles' scopes) and extra headers.
PRINCIPALS: dict[str, dict[str, Any]] = {
    "pat": {"scopes": ["patient/*.rs", "launch/patient"], "patient": "p1"},
    "lab": {"scopes": [LAB_SCOPE, "patient/Patient.rs"], "patient": "p1"},
    "clin": {"roles": ["clinician"], "fhir_user": "Practitioner/doc"},
    "bg": {"roles": ["clinician"], "fhir_user": "Practitioner/doc", "break_glass": "ED"},
    "analyst": {"roles": ["analyst"]},
    "exec": {"roles": ["executive"]},
    "admin": {"roles": ["administrator"]},
    "privacy": {"roles": ["privacy-officer"]},
    "backend": {"scopes": ["system/*.rs"], "kind": "client"},
}

# The expected outcome of each interaction for each principal: A allowed, D denied (403),
# H hidden (404, as if absent); for searches, the ids returned ('-': none).
MATRIX = """
interaction            | pat              | lab       | clin             | bg                     | analyst                | exec       | admin                  | privacy   | backend
read o1 (own)          | A                | A         | A                | A                      | A                      | D          | A                      | D         | A
read o2 (own, vitals)  | A                | H         | A                | A                      | A                      | D          | A                      | D         | A
read o3 (other)        | H                | H         | H                | A                      | A                      | D          | A                      | D         | A
read p1                | A                | A         | A                | A                      | A                      | D          | A                      | A         | A
read p2                | H                | H         | H                | A                      | A                      | D          | A                      | A         | A
read doc               | A                | D         | A                | A                      | A                      | D          | A                      | D         | A
read summary           | H                | D         | H                | A                      | A                      | A          | A                      | D         | A
read individual        | A                | D         | A                | A                      | A                      | H          | A                      | D         | A
vread o1               | A                | A         | A                | A                      | A                      | D          | A                      | D         | A
vread o3               | H                | H         | H                | A                      | A                      | D          | A                      | D         | A
history o1             | A                | A         | A                | A                      | A                      | D          | A                      | D         | A
history o3             | H                | H         | H                | A                      | A                      | D          | A                      | D         | A
history Observation    | o1+o2            | o1        | o1+o2            | o1+o2+o3               | o1+o2+o3               | D          | o1+o2+o3               | D         | o1+o2+o3
search Observation     | o1+o2            | o1        | o1+o2            | o1+o2+o3               | o1+o2+o3               | D          | o1+o2+o3               | D         | o1+o2+o3
search obs of p2       | -                | -         | -                | o3                     | o3                     | D          | o3                     | D         | o3
compartment p2/Obs     | -                | -         | -                | o3                     | o3                     | D          | o3                     | D         | o3
search Patient         | p1               | p1        | p1               | p1+p2                  | p1+p2                  | D          | p1+p2                  | p1+p2     | p1+p2
search MeasureReport   | individual       | D         | individual       | individual+summary     | individual+summary     | summary    | individual+summary     | D         | individual+summary
_include subject       | o1+o2+p1         | o1+p1     | o1+o2+p1         | o1+o2+o3+p1+p2         | o1+o2+o3+p1+p2         | D          | o1+o2+o3+p1+p2         | D         | o1+o2+o3+p1+p2
_revinclude subject    | o1+o2+p1         | o1+p1     | o1+o2+p1         | o1+o2+o3+p1+p2         | o1+o2+o3+p1+p2         | D          | o1+o2+o3+p1+p2         | p1+p2     | o1+o2+o3+p1+p2
everything p1          | c1+doc+individual+o1+o2+p1 | o1+p1 | c1+doc+individual+o1+o2+p1 | c1+doc+individual+o1+o2+p1 | c1+doc+individual+o1+o2+p1 | D | c1+doc+individual+o1+o2+p1 | p1 | c1+doc+individual+o1+o2+p1
everything p2          | H                | H         | H                | c2+e2+o3+other-doc+p2  | c2+e2+o3+other-doc+p2  | D          | c2+e2+o3+other-doc+p2  | p2        | c2+e2+o3+other-doc+p2
system search          | c1+o1+o2         | D         | c1+o1+o2         | c1+c2+o1+o2+o3         | c1+c2+o1+o2+o3         | D          | c1+c2+o1+o2+o3         | D         | c1+c2+o1+o2+o3
validate Observation   | A                | A         | A                | A                      | A                      | D          | A                      | D         | A
lookup gender          | A                | A         | A                | A                      | A                      | A          | A                      | A         | A
export Observation     | D                | D         | D                | D                      | A                      | D          | A                      | D         | A
reindex                | D                | D         | D                | D                      | D                      | D          | A                      | D         | D
viewdefinition-run     | D                | D         | D                | D                      | A                      | D          | A                      | D         | A
evaluate population    | D                | D         | A                | A                      | A                      | A          | A                      | D         | A
evaluate subject       | D                | D         | D                | D                      | A                      | D          | A                      | D         | A
care-gaps              | D                | D         | D                | D                      | A                      | D          | A                      | D         | A
create Condition p1    | D                | D         | A                | A                      | D                      | D          | A                      | D         | D
create Condition p2    | D                | D         | D                | A                      | D                      | D          | A                      | D         | D
update c1 (own)        | D                | D         | A                | A                      | D                      | D          | A                      | D         | D
update c2 (other)      | D                | D         | H                | A                      | D                      | D          | A                      | D         | D
move c1 to p2          | D                | D         | D                | A                      | D                      | D          | A                      | D         | D
patch c1 (own)         | D                | D         | A                | A                      | D                      | D          | A                      | D         | D
patch c2 (other)       | D                | D         | H                | A                      | D                      | D          | A                      | D         | D
delete own             | D                | D         | A                | A                      | D                      | D          | A                      | D         | D
delete other           | D                | D         | H                | A                      | D                      | D          | A                      | D         | D
"""


def _table() -> tuple[list[str], dict[str, dict[str, str]]]:
    lines = [line for line in MATRIX.strip().splitlines() if line.strip()]
    header = [c.strip() for c in lines[0].split("|")]
    columns = header[1:]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == len(header), line
        rows[cells[0]] = dict(zip(columns, cells[1:], strict=True))
    return columns, rows


COLUMNS, ROWS = _table()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[ServerThread]:
    root: Path = tmp_path_factory.mktemp("authz")
    app = auth_app(f"sqlite:///{root / 'cmio.db'}", root, model=model)
    with app.env.repository.transaction() as tx:
        for resource in FIXTURE:
            tx.create(dict(resource), id=resource["id"])
    with ServerThread(app, close_app=True) as running:
        yield running


class Caller:
    """One principal's HTTP client."""

    def __init__(self, server: ServerThread, name: str) -> None:
        spec = dict(PRINCIPALS[name])
        reason = spec.pop("break_glass", None)
        assert isinstance(server.app, CmioApp)
        token = mint_token(server.app, server.base, subject=name, **spec)
        headers = {**bearer(token), "accept": "application/fhir+json"}
        if reason:
            headers["x-break-glass"] = reason
        self.http = httpx.Client(base_url=server.base, headers=headers, timeout=30)
        self.name = name
        self.server = server

    def seed(self, resource: dict[str, Any]) -> None:
        """Store a resource directly (no authorization involved)."""
        assert isinstance(self.server.app, CmioApp)
        with self.server.app.env.repository.transaction() as tx:
            tx.create(dict(resource), id=resource["id"])


def _status(response: httpx.Response) -> str:
    if response.status_code == 403:
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "forbidden"
        return "D"
    if response.status_code == 404:
        return "H"
    assert response.status_code < 300, (response.status_code, response.text)
    return "A"


def _passed(response: httpx.Response) -> str:
    """Operations whose own answer varies (202, 501 ...): only whether authorization let it pass."""
    return "D" if _status_code(response) == 403 else "A"


def _status_code(response: httpx.Response) -> int:
    if response.status_code == 403:
        assert response.json()["issue"][0]["code"] == "forbidden"
    return response.status_code


def _ids(response: httpx.Response) -> str:
    if response.status_code != 200:
        return _status(response)
    body = response.json()
    ids = sorted({e["resource"]["id"] for e in body.get("entry", []) if "resource" in e})
    return "+".join(i for i in ids if not i.startswith("x-")) or "-"


def _deleted(response: httpx.Response) -> str:
    status = _status(response)
    if status == "A" and "etag" not in response.headers:
        return "H"  # "Nothing to delete": exactly the answer for an absent resource
    return status


VIEW = {
    "resourceType": "Parameters",
    "parameter": [
        {
            "name": "viewResource",
            "resource": {
                "resourceType": "ViewDefinition",
                "resource": "Patient",
                "status": "active",
                "select": [{"column": [{"name": "id", "path": "id"}]}],
            },
        }
    ],
}
FHIR_JSON = {"content-type": "application/fhir+json"}
PERIOD = {"periodStart": "2026-01-01", "periodEnd": "2026-12-31"}


def _patch(path: str, value: Any) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": path, "value": value}]


INTERACTIONS: dict[str, Callable[[Caller], str]] = {
    "read o1 (own)": lambda c: _status(c.http.get("/Observation/o1")),
    "read o2 (own, vitals)": lambda c: _status(c.http.get("/Observation/o2")),
    "read o3 (other)": lambda c: _status(c.http.get("/Observation/o3")),
    "read p1": lambda c: _status(c.http.get("/Patient/p1")),
    "read p2": lambda c: _status(c.http.get("/Patient/p2")),
    "read doc": lambda c: _status(c.http.get("/Practitioner/doc")),
    "read summary": lambda c: _status(c.http.get("/MeasureReport/summary")),
    "read individual": lambda c: _status(c.http.get("/MeasureReport/individual")),
    "vread o1": lambda c: _status(c.http.get("/Observation/o1/_history/1")),
    "vread o3": lambda c: _status(c.http.get("/Observation/o3/_history/1")),
    "history o1": lambda c: _status(c.http.get("/Observation/o1/_history")),
    "history o3": lambda c: _status(c.http.get("/Observation/o3/_history")),
    "history Observation": lambda c: _ids(c.http.get("/Observation/_history")),
    "search Observation": lambda c: _ids(c.http.get("/Observation")),
    "search obs of p2": lambda c: _ids(
        c.http.get("/Observation", params={"subject": "Patient/p2"})
    ),
    "compartment p2/Obs": lambda c: _ids(c.http.get("/Patient/p2/Observation")),
    "search Patient": lambda c: _ids(c.http.get("/Patient")),
    "search MeasureReport": lambda c: _ids(c.http.get("/MeasureReport")),
    "_include subject": lambda c: _ids(
        c.http.get("/Observation", params={"_include": "Observation:subject"})
    ),
    "_revinclude subject": lambda c: _ids(
        c.http.get("/Patient", params={"_revinclude": "Observation:subject"})
    ),
    "everything p1": lambda c: _ids(c.http.get("/Patient/p1/$everything")),
    "everything p2": lambda c: _ids(c.http.get("/Patient/p2/$everything")),
    "system search": lambda c: _ids(c.http.get("/", params={"_type": "Observation,Condition"})),
    "validate Observation": lambda c: _status(
        c.http.post("/Observation/$validate", json=_obs("v", "p1", "laboratory"), headers=FHIR_JSON)
    ),
    "lookup gender": lambda c: _status(
        c.http.get(
            "/CodeSystem/$lookup",
            params={"system": "http://hl7.org/fhir/administrative-gender", "code": "male"},
        )
    ),
    "export Observation": lambda c: _passed(
        c.http.get("/$export", params={"_type": "Observation"}, headers={"prefer": "respond-async"})
    ),
    "reindex": lambda c: _passed(c.http.post("/$reindex", json={"resourceType": "Parameters"})),
    "evaluate population": lambda c: _passed(
        c.http.get("/Measure/m/$evaluate-measure", params=PERIOD)
    ),
    "evaluate subject": lambda c: _passed(
        c.http.get("/Measure/m/$evaluate-measure", params={**PERIOD, "subject": "Patient/p1"})
    ),
    "care-gaps": lambda c: _passed(
        c.http.get("/Measure/$care-gaps", params={**PERIOD, "subject": "Patient/p1"})
    ),
    "viewdefinition-run": lambda c: _passed(
        c.http.post("/$viewdefinition-run", json=VIEW, headers=FHIR_JSON)
    ),
}

WRITES: dict[str, Callable[[Caller], str]] = {
    "create Condition p1": lambda c: _status(
        c.http.post("/Condition", json=_condition(None, "p1"), headers=FHIR_JSON)
    ),
    "create Condition p2": lambda c: _status(
        c.http.post("/Condition", json=_condition(None, "p2"), headers=FHIR_JSON)
    ),
    "update c1 (own)": lambda c: _status(
        c.http.put("/Condition/c1", json=_condition("c1", "p1"), headers=FHIR_JSON)
    ),
    "update c2 (other)": lambda c: _status(
        c.http.put("/Condition/c2", json=_condition("c2", "p2"), headers=FHIR_JSON)
    ),
    "patch c1 (own)": lambda c: _status(
        c.http.patch(
            "/Condition/c1",
            json=_patch("/code/text", f"asthma ({c.name})"),
            headers={"content-type": "application/json-patch+json"},
        )
    ),
    "patch c2 (other)": lambda c: _status(
        c.http.patch(
            "/Condition/c2",
            json=_patch("/code/text", f"asthma ({c.name})"),
            headers={"content-type": "application/json-patch+json"},
        )
    ),
}


def _move(c: Caller) -> str:
    """Update a Condition of p1 so that it belongs to p2 (then put it back)."""
    moved = c.http.put("/Condition/c1", json=_condition("c1", "p2"), headers=FHIR_JSON)
    outcome = _status(moved)
    if outcome == "A":
        c.http.put("/Condition/c1", json=_condition("c1", "p1"), headers=FHIR_JSON)
    return outcome


def _delete(patient: str) -> Callable[[Caller], str]:
    def run(c: Caller) -> str:
        rid = f"x-{c.name}-{patient}"
        c.seed({**_condition(rid, patient), "id": rid})
        return _deleted(c.http.delete(f"/Condition/{rid}"))

    return run


WRITES["move c1 to p2"] = _move
WRITES["delete own"] = _delete("p1")
WRITES["delete other"] = _delete("p2")


def test_table_covers_every_interaction() -> None:
    assert set(ROWS) == set(INTERACTIONS) | set(WRITES)
    assert list(PRINCIPALS) == COLUMNS


def _run(server: ServerThread, interactions: dict[str, Callable[[Caller], str]]) -> None:
    mismatches = []
    for name in COLUMNS:
        caller = Caller(server, name)
        with caller.http:
            for interaction, run in interactions.items():
                got = run(caller)
                expected = ROWS[interaction][name]
                if got != expected:
                    mismatches.append(f"{interaction} as {name}: got {got}, expected {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_authorization_matrix(server: ServerThread) -> None:
    """Reads, searches and operations (before the writes add versions and resources)."""
    _run(server, INTERACTIONS)


def test_authorization_matrix_writes(server: ServerThread) -> None:
    """Creates, updates, patches and deletes of own and other patients' data."""
    _run(server, WRITES)


def _same_shape(hidden: httpx.Response, absent: httpx.Response, rid: str, other: str) -> None:
    """A hidden resource's answer is the absent one's, byte for byte (ids swapped)."""
    assert hidden.status_code == absent.status_code
    assert hidden.content == absent.content.replace(other.encode(), rid.encode())
    skip = {"x-request-id", "date", "content-length"}
    assert [k for k in hidden.headers if k not in skip] == [
        k for k in absent.headers if k not in skip
    ]
    for key in hidden.headers:
        if key not in skip:
            assert hidden.headers[key] == absent.headers[key].replace(other, rid)


def test_hidden_is_exactly_not_found(server: ServerThread) -> None:
    pat = Caller(server, "pat")
    clin = Caller(server, "clin")
    with pat.http, clin.http:
        for path in ("/Observation/{}", "/Observation/{}/_history/1", "/Observation/{}/_history"):
            hidden = pat.http.get(path.format("o3"))
            absent = pat.http.get(path.format("zz"))
            assert hidden.status_code == 404
            _same_shape(hidden, absent, "o3", "zz")
        _same_shape(
            pat.http.get("/Patient/p2/$everything"),
            pat.http.get("/Patient/zz/$everything"),
            "p2",
            "zz",
        )
        _same_shape(clin.http.get("/Patient/p2"), clin.http.get("/Patient/zz"), "p2", "zz")
        _same_shape(
            clin.http.delete("/Encounter/e2"), clin.http.delete("/Encounter/zz"), "e2", "zz"
        )
        assert clin.http.get("/Encounter/e2").status_code == 404
        admin = Caller(server, "admin")
        with admin.http:
            assert admin.http.get("/Encounter/e2").status_code == 200  # not deleted


def _count(caller: Caller, rtype: str) -> int:
    total = caller.http.get(f"/{rtype}", params={"_summary": "count"}).json()["total"]
    assert isinstance(total, int)
    return total


def test_transaction_refused_when_one_entry_is_denied(server: ServerThread) -> None:
    clin = Caller(server, "clin")
    admin = Caller(server, "admin")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _condition(None, "p1"), "request": {"method": "POST", "url": "Condition"}},
            {"resource": _condition(None, "p2"), "request": {"method": "POST", "url": "Condition"}},
        ],
    }
    with clin.http, admin.http:
        before = _count(admin, "Condition")
        refused = clin.http.post("/", json=bundle, headers=FHIR_JSON)
        assert refused.status_code == 403
        issue = refused.json()["issue"][0]
        assert issue["code"] == "forbidden" and issue["expression"] == ["Bundle.entry[1]"]
        assert _count(admin, "Condition") == before
        hidden_update = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": _condition("c2", "p2"),
                    "request": {"method": "PUT", "url": "Condition/c2"},
                }
            ],
        }
        assert clin.http.post("/", json=hidden_update, headers=FHIR_JSON).status_code == 404
        conditional = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Condition?code=asthma"}}],
        }
        assert clin.http.post("/", json=conditional, headers=FHIR_JSON).status_code == 403
        bundle["entry"] = bundle["entry"][:1]
        assert clin.http.post("/", json=bundle, headers=FHIR_JSON).status_code == 200
        assert _count(admin, "Condition") == before + 1


def test_batch_entries_are_checked_one_by_one(server: ServerThread) -> None:
    clin = Caller(server, "clin")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation/o1"}},
            {"request": {"method": "GET", "url": "Observation/o3"}},
            {"request": {"method": "GET", "url": "AuditEvent"}},
        ],
    }
    with clin.http:
        reply = clin.http.post("/", json=batch, headers=FHIR_JSON)
    assert reply.status_code == 200
    statuses = [e["response"]["status"] for e in reply.json()["entry"]]
    assert statuses == ["200", "404", "403"]  # the audit trail needs an explicit scope


def test_break_the_glass_needs_a_role_and_a_reason(server: ServerThread) -> None:
    assert isinstance(server.app, CmioApp)
    analyst = mint_token(server.app, server.base, roles=["analyst"])
    clinician = mint_token(
        server.app, server.base, roles=["clinician"], fhir_user="Practitioner/doc"
    )
    refused = httpx.get(
        server.base + "/Observation/o3", headers={**bearer(analyst), "x-break-glass": "curious"}
    )
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"
    empty = httpx.get(
        server.base + "/Observation/o3", headers={**bearer(clinician), "x-break-glass": "x" * 501}
    )
    assert empty.status_code == 400
    opened = httpx.get(
        server.base + "/Observation/o3", headers={**bearer(clinician), "x-break-glass": "ED visit"}
    )
    assert opened.status_code == 200


def test_export_status_and_files_need_export_rights(server: ServerThread) -> None:
    admin = Caller(server, "admin")
    pat = Caller(server, "pat")
    with admin.http, pat.http:
        kick = admin.http.get(
            "/$export", params={"_type": "Patient"}, headers={"prefer": "respond-async"}
        )
        assert kick.status_code == 202, kick.text
        status_url = kick.headers["content-location"]
        assert pat.http.get(status_url).status_code == 403
        assert pat.http.delete(status_url).status_code == 403
        assert admin.http.get(status_url).status_code in (200, 202)
        assert admin.http.delete(status_url).status_code == 202
