"""$evaluate-measure and $care-gaps over HTTP on a real server (SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cmio.api.app import CmioApp, build_env
from cmio.api.env import Settings
from cmio.testing.server import ServerThread
from tests.measures import test_cms125

PERIOD = {"periodStart": "2026-01-01", "periodEnd": "2026-12-31"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path: Path = tmp_path_factory.mktemp("measures-http") / "cmio.db"
    app = CmioApp(build_env(f"sqlite:///{path}", Settings(terminology_db=None)))
    with (
        ServerThread(app, close_app=True) as running,
        httpx.Client(
            base_url=running.base, timeout=120, headers={"accept": "application/fhir+json"}
        ) as http,
    ):
        resources, _ = test_cms125.population()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
            ],
        }
        assert http.post("", json=bundle).status_code == 200
        yield http


def _counts(report: dict[str, object]) -> dict[str, int]:
    group = report["group"][0]  # type: ignore[index]
    return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}


def test_evaluate_measure_summary_subject_list_and_individual(client: httpx.Client) -> None:
    _, expected = test_cms125.population()
    denominator = sum("D" in flags for flags in expected.values())
    numerator = sum("N" in flags for flags in expected.values())
    summary = client.get("/Measure/CMS125/$evaluate-measure", params=PERIOD)
    assert summary.status_code == 200, summary.text
    report = summary.json()
    assert report["resourceType"] == "MeasureReport" and report["type"] == "summary"
    assert _counts(report)["denominator"] == denominator
    assert _counts(report)["numerator"] == numerator
    listed = client.get(
        "/Measure/$evaluate-measure",
        params={
            **PERIOD,
            "measure": "https://cmio.dev/fhir/Measure/CMS125",
            "reportType": "subject-list",
        },
    ).json()
    numerator_list = next(c for c in listed["contained"] if c["id"] == "list-numerator")
    assert sorted(e["item"]["reference"] for e in numerator_list["entry"]) == sorted(
        f"Patient/{p}" for p, flags in expected.items() if "N" in flags
    )
    posted = client.post(
        "/Measure/CMS125/$evaluate-measure",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "periodStart", "valueDate": "2026-01-01"},
                {"name": "periodEnd", "valueDate": "2026-12-31"},
                {"name": "subject", "valueString": "Patient/p01"},
            ],
        },
    ).json()
    assert posted["type"] == "individual" and posted["subject"] == {"reference": "Patient/p01"}
    assert _counts(posted)["numerator"] == 1


@pytest.mark.parametrize(
    ("path", "params", "status", "expression"),
    [
        ("/Measure/CMS125/$evaluate-measure", {"periodEnd": "2026-12-31"}, 400, "periodStart"),
        (
            "/Measure/CMS125/$evaluate-measure",
            {**PERIOD, "reportType": "x"},
            400,
            "reportType",
        ),
        ("/Measure/CMS999/$evaluate-measure", PERIOD, 404, "measure"),
        ("/Measure/$evaluate-measure", PERIOD, 400, "measure"),
        ("/Measure/$care-gaps", PERIOD, 400, "subject"),
        ("/Measure/$care-gaps", {**PERIOD, "subject": "p03", "status": "odd"}, 400, "status"),
    ],
)
def test_bad_parameters_are_named(
    client: httpx.Client, path: str, params: dict[str, str], status: int, expression: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [expression]


def test_care_gaps_returns_a_document_per_patient_with_gaps(client: httpx.Client) -> None:
    response = client.get(
        "/Measure/$care-gaps",
        params=[
            ("periodStart", "2026-01-01"),
            ("periodEnd", "2026-12-31"),
            ("subject", "Patient/p03"),
            ("subject", "Patient/p01"),
            ("measureId", "CMS125"),
        ],
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["resourceType"] == "Parameters"
    [returned] = answer["parameter"]  # p01 is screened: no open gap
    bundle = returned["resource"]
    issue = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
    )
    assert issue["patient"] == {"reference": "Patient/p03"}
    assert issue["extension"][0]["valueDate"] == "2024-09-30"
