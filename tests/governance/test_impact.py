"""Impact analysis on a small synthetic store, checked against direct queries and runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.governance.impact import ImpactAnalyzer
from cmio.governance.impact_model import ImpactReport
from cmio.governance.impact_valueset import expand_members
from cmio.governance.lifecycle import set_state
from cmio.indexing.extract import SearchIndexer
from cmio.measures import MeasureRunner, Period, measure_from_yaml
from cmio.measures.engines import open_engine
from cmio.model import Model
from cmio.reports import render_html, render_pdf
from cmio.rules import RuleEngine, rule_as_library, rule_from_json, run_rules
from cmio.store import open_repository
from cmio.store.base import Repository
from cmio.terminology.factory import open_terminology
from cmio.terminology.service import TerminologyService
from cmio.views import run as run_view
from cmio.views.valuesets import ExpansionMembership

DX = "http://example.org/fhir/CodeSystem/dx"
VS_URL = "http://example.org/fhir/ValueSet/impact-dx"
LOINC = "http://loinc.org"
TODAY = date.today()
PERIOD = Period(TODAY - timedelta(days=364), TODAY)
PATIENTS = 30


def valueset(rid: str, version: str, codes: list[str], state: str) -> dict[str, Any]:
    """A ValueSet over the DX codes, in a lifecycle state."""
    resource: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": rid,
        "url": VS_URL,
        "version": version,
        "name": "ImpactDx",
        "status": "draft",
        "compose": {"include": [{"system": DX, "concept": [{"code": c} for c in codes]}]},
    }
    set_state(resource, state)  # type: ignore[arg-type]
    return resource


def _ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def clinical_data() -> list[dict[str, Any]]:
    """30 patients (two GPs), Conditions coded D0..D4 (one with two codings), HbA1c
    Observations with values and statuses that the rules and the measure tell apart."""
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Practitioner",
            "id": "dr-a",
            "name": [{"given": ["Ann"], "family": "Able"}],
        },
        {"resourceType": "Practitioner", "id": "dr-b"},
        {
            "resourceType": "CodeSystem",
            "id": "dx",
            "url": DX,
            "status": "active",
            "content": "complete",
            "concept": [{"code": f"D{i}"} for i in range(6)],
        },
    ]
    for i in range(PATIENTS):
        pid = f"p{i:02d}"
        out.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "gender": "female" if i % 2 else "male",
                "birthDate": "1970-01-01",
                "generalPractitioner": [{"reference": f"Practitioner/dr-{'ab'[i % 2]}"}],
            }
        )
        out.append(
            {
                "resourceType": "Condition",
                "id": f"c{i:02d}",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": DX, "code": f"D{i % 5}"}]},
                "recordedDate": _ago(30),
            }
        )
        if i % 3 == 0:
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"o{i:02d}",
                    "status": "final" if i % 2 == 0 else "preliminary",
                    "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": _ago(10 + i),
                    **({"valueQuantity": {"value": 6 + i % 7, "unit": "%"}} if i % 4 else {}),
                }
            )
    # one Condition coded D0 and D1: matches both versions, so it does not move
    out.append(
        {
            "resourceType": "Condition",
            "id": "c-both",
            "subject": {"reference": "Patient/p03"},
            "code": {"coding": [{"system": DX, "code": "D0"}, {"system": DX, "code": "D1"}]},
            "recordedDate": _ago(5),
        }
    )
    # an old Observation outside a 90-day window (clinical date 200 days ago)
    out.append(
        {
            "resourceType": "Observation",
            "id": "o-old",
            "status": "preliminary",
            "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
            "subject": {"reference": "Patient/p01"},
            "effectiveDateTime": _ago(200),
        }
    )
    return out


MEASURE_YAML: dict[str, Any] = {
    "id": "impact-test",
    "url": "http://example.org/fhir/Measure/impact-test",
    "version": "1.0.0",
    "title": "Impact test measure",
    "stratifiers": ["clinician"],
    "populations": {
        "initial-population": "SELECT DISTINCT c.patient_id FROM conditions AS c "
        "WHERE {in:c:ImpactDx}",
        "denominator": "SELECT patient_id FROM initial_population",
        "numerator": "SELECT DISTINCT o.patient_id FROM observations AS o WHERE o.code = '4548-4'",
    },
}


def measure_resource(rid: str, version: str, numerator: str, state: str) -> dict[str, Any]:
    data = {**MEASURE_YAML, "version": version}
    data["populations"] = {**MEASURE_YAML["populations"], "numerator": numerator}
    resource = measure_from_yaml(data).to_resource()
    resource["id"] = rid
    set_state(resource, state)  # type: ignore[arg-type]
    return resource


DX_RULE = {
    "id": "dx-in-valueset",
    "severity": "warning",
    "message": "Condition code should be in the impact value set",
    "scope": {"resourceTypes": ["Condition"]},
    "terminology": {"path": "code.coding", "valueSet": VS_URL},
}
OBS_RULE = {
    "id": "obs-value",
    "severity": "warning",
    "message": "Observation needs a value",
    "scope": {"resourceTypes": ["Observation"]},
    "expression": "value.exists()",
}


def rule_library(data: dict[str, Any], version: str, state: str) -> dict[str, Any]:
    library = rule_as_library(rule_from_json(data, version=version, status="draft"))
    set_state(library, state)  # type: ignore[arg-type]
    return library


DX_VIEW = {
    "resourceType": "ViewDefinition",
    "url": "http://example.org/fhir/ViewDefinition/impact-dx",
    "version": "1.0.0",
    "name": "impact_dx_conditions",
    "status": "active",
    "resource": "Condition",
    "select": [{"column": [{"name": "id", "path": "getResourceKey()"}]}],
    "where": [{"path": f"code.memberOf('{VS_URL}')"}],
}


def view_basic() -> dict[str, Any]:
    from cmio.views.materialize import view_as_basic

    basic = view_as_basic(DX_VIEW, id="view-dx")
    set_state(basic, "active")
    return basic


def populate(repository: Repository) -> None:
    """The synthetic store: data, ValueSet 1.0.0 active and 2.0.0 draft, rules, measure."""
    resources = [
        *clinical_data(),
        valueset("vs-1", "1.0.0", ["D0", "D1"], "active"),
        valueset("vs-2", "2.0.0", ["D1", "D2"], "draft"),
        rule_library(DX_RULE, "1.0.0", "active"),
        rule_library(OBS_RULE, "1.0.0", "active"),
        rule_library(
            {**OBS_RULE, "expression": "value.exists() and status = 'final'"}, "1.1.0", "draft"
        ),
        view_basic(),
        measure_resource("m-1", "1.0.0", MEASURE_YAML["populations"]["numerator"], "active"),
        measure_resource(
            "m-2",
            "2.0.0",
            "SELECT DISTINCT o.patient_id FROM observations AS o "
            "WHERE o.code = '4548-4' AND o.value_num > 8",
            "draft",
        ),
    ]
    with repository.transaction() as tx:
        for resource in resources:
            tx.create(resource, id=resource["id"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[Repository]:
    path: Path = tmp_path_factory.mktemp("impact") / "impact.db"
    repository = open_repository(f"sqlite:///{path}", indexer=SearchIndexer(model))
    populate(repository)
    yield repository
    repository.close()


@pytest.fixture(scope="module")
def terminology(store: Repository) -> TerminologyService:
    return open_terminology(store, None, core=False)


@pytest.fixture(scope="module")
def analyzer(store: Repository, model: Model, terminology: TerminologyService) -> ImpactAnalyzer:
    return ImpactAnalyzer(store, model, terminology, today=lambda: TODAY)


@pytest.fixture(scope="module")
def vs_report(analyzer: ImpactAnalyzer) -> ImpactReport:
    return analyzer.analyze("ValueSet", "vs-2")


@pytest.fixture(scope="module")
def rule_report(analyzer: ImpactAnalyzer) -> ImpactReport:
    return analyzer.analyze("Library", "obs-value-1-1-0", days=90)


@pytest.fixture(scope="module")
def measure_report(analyzer: ImpactAnalyzer) -> ImpactReport:
    return analyzer.analyze("Measure", "m-2", period=PERIOD)


def _current(store: Repository, rtype: str) -> list[dict[str, Any]]:
    return [orjson.loads(s.data) for s in store.iter_current([rtype]) if s.data is not None]


def _codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource.get("code", {}).get("coding", []) if c["system"] == DX}


def _subject(resource: dict[str, Any]) -> str:
    return str(resource["subject"]["reference"])


def test_valueset_change_resources_match_a_hand_count(
    vs_report: ImpactReport, store: Repository
) -> None:
    report = vs_report
    old, new = {"D0", "D1"}, {"D1", "D2"}
    conditions = _current(store, "Condition")
    newly = [c for c in conditions if _codes(c) & new and not _codes(c) & old]
    gone = [c for c in conditions if _codes(c) & old and not _codes(c) & new]
    assert report.kind == "valueset" and report.current == f"{VS_URL}|1.0.0"
    assert report.codes_added == ((DX, "D2"),) and report.codes_removed == ((DX, "D0"),)
    [shift] = report.resources
    assert shift.resource_type == "Condition" and shift.elements == ("Condition.code",)
    assert shift.newly == len(newly) and shift.no_longer == len(gone)
    assert set(shift.newly_examples) == {f"Condition/{c['id']}" for c in newly}
    assert set(shift.no_longer_patient_ids) == {_subject(c) for c in gone}
    assert shift.newly_patients == len({_subject(c) for c in newly})
    assert "Condition/c-both" not in shift.no_longer_examples
    assert report.patients == {
        "newly": len({_subject(c) for c in newly}),
        "noLonger": len({_subject(c) for c in gone}),
    }
    assert set(report.patient_ids["noLonger"]) == {_subject(c) for c in gone}
    assert report.to_json()["patients"]["newly"]["count"] == report.patients["newly"]


def test_valueset_change_usages_equal_direct_runs(
    vs_report: ImpactReport, store: Repository, terminology: TerminologyService, model: Model
) -> None:
    report = vs_report
    by_kind = {(u.kind, u.reference): u for u in report.usages}
    # the measure, run directly with each value-set version
    measure = by_kind[("measure", "Measure/m-1")]
    definition = measure_from_yaml(MEASURE_YAML)
    for state, rid in (("before", "vs-1"), ("after", "vs-2")):
        vs = orjson.loads(store.read("ValueSet", rid).data or b"{}")
        engine = open_engine("duckdb", threads=1)
        try:
            runner = MeasureRunner(engine, valuesets={"ImpactDx": vs}, terminology=terminology)
            [result] = runner.evaluate([definition], PERIOD, store)
        finally:
            engine.close()
        assert dict(getattr(measure, state)) == dict(result.counts)
    # the rule: findings = Conditions with no code in the version's expansion (hand count)
    rule = by_kind[("rule", "Library/rule-dx-in-valueset")]
    conditions = _current(store, "Condition")
    for state, codes in (("before", {"D0", "D1"}), ("after", {"D1", "D2"})):
        expected = sum(1 for c in conditions if not _codes(c) & codes)
        assert getattr(rule, state) == {"findings": expected}
    # the view: rows = Conditions with a code in the version's expansion (hand count), and
    # the same as running the view directly with each expansion
    view = by_kind[("view", "Basic/view-dx")]
    for state, codes, rid in (("before", {"D0", "D1"}, "vs-1"), ("after", {"D1", "D2"}, "vs-2")):
        expected = sum(1 for c in conditions if _codes(c) & codes)
        members = expand_members(terminology, orjson.loads(store.read("ValueSet", rid).data or b""))
        table = run_view(DX_VIEW, store, "memory", terminology=_Fixed(members))
        assert getattr(view, state) == {"rows": expected} == {"rows": table.num_rows}
    # and the rule through a batch run with each version's expansion
    for state, rid in (("before", "vs-1"), ("after", "vs-2")):
        members = expand_members(terminology, orjson.loads(store.read("ValueSet", rid).data or b""))
        expander = _Fixed(members)
        engine = RuleEngine(FhirPathEngine(model), ExpansionMembership(expander))
        table = run_rules(store, engine, [rule_from_json(DX_RULE)])
        assert getattr(rule, state)["findings"] == table.num_rows


class _Fixed:
    def __init__(self, members: frozenset[tuple[str, str]]) -> None:
        self.members = members

    def expand(self, valueset: str) -> list[tuple[str, str]]:
        return sorted(self.members)


def test_rule_change_equals_batch_runs(
    rule_report: ImpactReport, store: Repository, model: Model
) -> None:
    report = rule_report
    assert report.kind == "rule" and report.alerts is not None
    engine = RuleEngine(FhirPathEngine(model))
    old_rule = rule_from_json(OBS_RULE)
    new_rule = rule_from_json({**OBS_RULE, "expression": "value.exists() and status = 'final'"})
    recent = {
        f"Observation/{o['id']}"
        for o in _current(store, "Observation")
        if o["effectiveDateTime"] >= _ago(90)
    }
    before = {r for r in run_rules(store, engine, [old_rule]).column("resource").to_pylist()}
    after = {r for r in run_rules(store, engine, [new_rule]).column("resource").to_pylist()}
    before, after = before & recent, after & recent
    alerts = report.alerts
    assert alerts.evaluated == len(recent)
    assert (alerts.before, alerts.after) == (len(before), len(after))
    assert alerts.started == len(after - before) > 0
    assert {s for s, _ in alerts.started_examples} == after - before
    assert alerts.stopped == len(before - after)


def test_measure_change_per_clinician_equals_direct_runs(
    measure_report: ImpactReport, store: Repository, terminology: TerminologyService
) -> None:
    report = measure_report
    direct = []
    for rid in ("m-1", "m-2"):
        from cmio.measures import measure_from_resource

        definition = measure_from_resource(orjson.loads(store.read("Measure", rid).data or b""))
        engine = open_engine("duckdb", threads=1)
        try:
            runner = MeasureRunner(engine, terminology=terminology)
            runner.valuesets["ImpactDx"] = orjson.loads(store.read("ValueSet", "vs-1").data or b"")
            [result] = runner.evaluate([definition], PERIOD, store)
        finally:
            engine.close()
        direct.append(result)
    assert report.totals == {"before": dict(direct[0].counts), "after": dict(direct[1].counts)}
    strata = [
        {r["stratum"]: r for r in d.strata.to_pylist() if r["stratifier"] == "clinician"}
        for d in direct
    ]
    assert {c.clinician for c in report.clinicians} == set(strata[0]) | set(strata[1])
    for shift in report.clinicians:
        for side, rows in zip((shift.before, shift.after), strata, strict=True):
            assert side["numerator"] == rows[shift.clinician]["numerator"]
            assert side["denominator"] == rows[shift.clinician]["denominator"]
    assert any(c.changed for c in report.clinicians)
    names = {c.clinician: c.name for c in report.clinicians}
    assert names == {"Practitioner/dr-a": "Ann Able", "Practitioner/dr-b": ""}


def test_reports_render(
    vs_report: ImpactReport, rule_report: ImpactReport, measure_report: ImpactReport
) -> None:
    for impact in (vs_report, rule_report, measure_report):
        html = render_html(impact.to_report())
        assert "Impact analysis" in html and impact.proposed in html
        assert impact.generated.isoformat(timespec="seconds") in html
        pdf = render_pdf(impact.to_report())
        assert pdf.startswith(b"%PDF-") and re.search(rb"/Type\s*/Page\b", pdf)
        document = impact.to_json()
        assert document["summary"] == impact.summary()
        orjson.dumps(document)


@pytest.mark.postgres
def test_same_impact_on_postgres(postgres_url: str, model: Model, analyzer: ImpactAnalyzer) -> None:
    import uuid

    import psycopg

    from cmio.testing.pg import with_search_path

    schema = f"impact_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    repository = open_repository(
        with_search_path(postgres_url, schema), indexer=SearchIndexer(model)
    )
    try:
        populate(repository)
        pg = ImpactAnalyzer(
            repository, model, open_terminology(repository, None, core=False), today=lambda: TODAY
        )
        for rtype, rid in (("ValueSet", "vs-2"), ("Library", "obs-value-1-1-0")):
            mine, theirs = pg.analyze(rtype, rid), analyzer.analyze(rtype, rid, period=PERIOD)
            assert mine.resources == theirs.resources and mine.alerts == theirs.alerts
            assert [u.to_json() for u in mine.usages] == [u.to_json() for u in theirs.usages]
    finally:
        repository.close()
