"""``$impact``, ``cmio governance impact``, the impact summary in lifecycle Provenance, and
deletes of approved artifacts refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from cmio.api.app import build_env
from cmio.api.context import RequestContext
from cmio.api.env import Env, Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.cds import CdsService, service_as_library
from cmio.cli.main import app
from cmio.governance.lifecycle import set_state
from cmio.governance.service import IMPACT_EXTENSION
from cmio.model import Model
from cmio.security.grant import AccessGrant
from tests.governance.conftest import user
from tests.governance.test_impact import TODAY, VS_URL, populate, valueset

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
A1C_AGES = {"pd1": 100, "pd2": 250, "pd3": None, "pd4": 400}
"""Diabetic patients and the age in days of their last HbA1c (None: never)."""


def _cds_data() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pid, age in A1C_AGES.items():
        out.append({"resourceType": "Patient", "id": pid})
        out.append(
            {
                "resourceType": "Condition",
                "id": f"dm-{pid}",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": SNOMED, "code": "44054006"}]},
            }
        )
        if age is not None:
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"a1c-{pid}",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": (TODAY - timedelta(days=age)).isoformat(),
                    "valueQuantity": {"value": 7.1, "unit": "%"},
                }
            )
    for version, months, state in (("1.0.0", 6, "active"), ("2.0.0", 12, "draft")):
        service = CdsService(
            "diabetes-a1c",
            "patient-view",
            "Diabetes: HbA1c overdue",
            "A diabetic without a recent HbA1c",
            "diabetes-a1c",
            {
                "conditions": "Condition?patient={{context.patientId}}",
                "a1c": "Observation?patient={{context.patientId}}&code=http://loinc.org|4548-4",
            },
            {"months": months},
            version,
        )
        library = service_as_library(service)
        set_state(library, state)  # type: ignore[arg-type]
        out.append(library)
    return out


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("impact-api") / "api.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def env(db_url: str, model: Model) -> Iterator[Env]:
    settings = Settings(validation="off", terminology_db=None)
    built = build_env(db_url, settings, model)
    populate(built.repository)
    with built.repository.transaction() as tx:
        for resource in _cds_data():
            tx.create(resource, id=resource["id"])
    yield built
    built.repository.close()


@pytest.fixture(scope="module")
def router(env: Env) -> FhirRouter:
    return FhirRouter(env)


def _call(
    router: FhirRouter,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    grant: AccessGrant | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = FhirRequest(
        method,
        path,
        query=query or [],
        headers={"content-type": "application/fhir+json", "accept": "application/fhir+json"},
        body=orjson.dumps(body) if body is not None else b"",
        context=RequestContext(grant=grant),
    )
    response = router.handle(request)
    return response.status, dict(response.headers), response.body


def test_impact_operation_formats(router: FhirRouter) -> None:
    status, headers, body = _call(router, "POST", "ValueSet/vs-2/$impact")
    assert status == 200 and headers["content-type"] == "application/json"
    document = orjson.loads(body)
    assert document["kind"] == "valueset" and document["current"].endswith("|1.0.0")
    assert document["resources"][0]["newlyMatching"]["resources"] > 0
    params = {"resourceType": "Parameters", "parameter": [{"name": "days", "valueInteger": 30}]}
    status, headers, body = _call(
        router, "POST", "Library/obs-value-1-1-0/$impact", [("_format", "html")], params
    )
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<h1>Impact analysis: data-quality rule" in body and b"last 30 days" in body
    status, headers, body = _call(router, "GET", "Measure/m-2/$impact", [("_format", "pdf")])
    assert status == 200 and headers["content-type"] == "application/pdf"
    assert body.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("path", "query", "status", "expression"),
    [
        ("ValueSet/vs-2/$impact", [("_format", "docx")], 400, "_format"),
        ("ValueSet/vs-2/$impact", [("days", "0")], 400, "days"),
        ("ValueSet/vs-2/$impact", [("periodStart", "2026-01-01")], 400, "periodEnd"),
        ("ConceptMap/none/$impact", [], 404, None),
    ],
)
def test_impact_operation_bad_input(
    router: FhirRouter, path: str, query: list[tuple[str, str]], status: int, expression: str | None
) -> None:
    got, _, body = _call(router, "POST", path, query)
    outcome = orjson.loads(body)
    assert got == status and outcome["resourceType"] == "OperationOutcome"
    if expression is not None:
        assert outcome["issue"][0]["expression"] == [expression]


def test_impact_needs_access_to_all_data(router: FhirRouter) -> None:
    narrow = AccessGrant("vs-reader", "user", frozenset({"user/ValueSet.rs"}))
    status, _, body = _call(router, "POST", "ValueSet/vs-2/$impact", grant=narrow)
    assert status == 403 and orjson.loads(body)["resourceType"] == "OperationOutcome"
    wide = AccessGrant("analyst", "user", frozenset({"user/*.rs"}))
    assert _call(router, "POST", "Library/obs-value-1-1-0/$impact", grant=wide)[0] == 200


def test_impact_of_unsupported_type(router: FhirRouter, env: Env) -> None:
    with env.repository.transaction() as tx:
        tx.create({"resourceType": "ConceptMap", "status": "draft"}, id="cm-1")
    status, _, body = _call(router, "POST", "ConceptMap/cm-1/$impact")
    assert status == 400 and orjson.loads(body)["issue"][0]["code"] == "not-supported"


def test_cds_change_replayed_over_patients(router: FhirRouter) -> None:
    status, _, body = _call(router, "POST", "Library/diabetes-a1c-2-0-0/$impact")
    assert status == 200, body
    alerts = orjson.loads(body)["alerts"]

    def fires(months: int) -> set[str]:
        limit = round(months * 30.44)
        return {f"Patient/{pid}" for pid, age in A1C_AGES.items() if age is None or age > limit}

    before, after = fires(6), fires(12)
    assert (alerts["before"], alerts["after"]) == (len(before), len(after))
    stopped = {e["subject"] for e in alerts["stopFiring"]["examples"]}
    assert stopped == before - after and alerts["stopFiring"]["count"] == len(before - after)
    assert alerts["startFiring"]["count"] == len(after - before)


def test_submit_and_approval_record_the_impact(router: FhirRouter) -> None:
    clin, tech = user("dr-house", "clinician"), user("ada", "informaticist")
    provenances = []
    for action, grant in (("submit", clin), ("approve", clin), ("approve", tech)):
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "action", "valueCode": action}],
        }
        status, _, answer = _call(
            router, "POST", "ValueSet/vs-2/$governance-transition", body=body, grant=grant
        )
        assert status == 200, answer
        provenances.append(orjson.loads(answer)["parameter"][2]["resource"])
    recorded = [
        [e["valueString"] for e in p.get("extension", []) if e["url"] == IMPACT_EXTENSION]
        for p in provenances
    ]
    assert recorded[1] == []  # the first approval does not complete it
    for summary in (recorded[0], recorded[2]):
        assert len(summary) == 1 and summary[0].startswith("Impact of ")
        assert "resources newly matching" in summary[0]


def test_delete_refused_once_approved(router: FhirRouter, env: Env) -> None:
    status, _, body = _call(router, "DELETE", "ValueSet/vs-1")
    outcome = orjson.loads(body)
    assert status == 409 and outcome["issue"][0]["expression"] == ["ValueSet.status"]
    assert env.repository.read("ValueSet", "vs-1").data is not None
    status, _, body = _call(router, "DELETE", "ValueSet", [("url", VS_URL)])  # conditional
    assert status == 409 and orjson.loads(body)["issue"][0]["code"] == "business-rule"
    assert env.repository.read("ValueSet", "vs-2").data is not None
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": "Measure/m-1"}}],
    }
    status, _, body = _call(router, "POST", "", body=bundle)
    assert status == 409 and env.repository.read("Measure", "m-1").data is not None
    with env.repository.transaction() as tx:
        tx.create(valueset("vs-3", "3.0.0", ["D4"], "draft"), id="vs-3")
    status, _, _ = _call(router, "DELETE", "ValueSet/vs-3")
    assert status == 200


def test_cli_impact_writes_reports(tmp_path: Path, env: Env, db_url: str) -> None:
    url = db_url
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["governance", "impact", "Measure/m-2", "--database", url,
         "--html", str(out / "m.html"), "--pdf", str(out / "m.pdf"), "--json", str(out / "m.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Impact of http://example.org/fhir/Measure/impact-test|2.0.0" in result.output
    assert (out / "m.pdf").read_bytes().startswith(b"%PDF-")
    assert "<h1>Impact analysis: measure" in (out / "m.html").read_text()
    assert orjson.loads((out / "m.json").read_bytes())["kind"] == "measure"
    bad = CliRunner().invoke(app, ["governance", "impact", "ValueSet/nope", "--database", url])
    assert bad.exit_code == 1 and "error:" in bad.output
