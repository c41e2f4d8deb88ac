"""Cost of care on hand-written claims with known totals, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from cmio.measures.cost import cost_of_care, read_cost
from cmio.measures.ehr_use import Period, SqlEngine

PERIOD = Period.parse("2026-01/2026-12")
ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _money(category: str, value: float) -> dict[str, Any]:
    return {"category": {"coding": [{"system": ADJ, "code": category}]},
            "amount": {"value": value, "currency": "USD"}}  # fmt: skip


def _eob(
    eid: str, patient: str, day: str, totals: dict[str, float], *, provider: str | None = "d1",
    payment: float | None = None, status: str = "active",
) -> dict[str, Any]:  # fmt: skip
    eob: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit", "id": eid, "status": status,
        "patient": {"reference": f"Patient/{patient}"},
        "billablePeriod": {"start": f"{day}T10:00:00-05:00", "end": f"{day}T10:30:00-05:00"},
        "claim": {"reference": f"Claim/c-{eid}"},
        "total": [_money(k, v) for k, v in totals.items()],
    }  # fmt: skip
    if provider:
        eob["provider"] = {"reference": f"Organization/{provider}"}
    if payment is not None:
        eob["payment"] = {"amount": {"value": payment, "currency": "USD"}}
    return eob


def _claim(eid: str, encounter: str, dx: list[tuple[int, str, str | None]]) -> dict[str, Any]:
    diagnosis = []
    for seq, code, kind in dx:
        item: dict[str, Any] = {"sequence": seq, "diagnosisCodeableConcept": {
            "coding": [{"system": ICD, "code": code, "display": f"dx {code}"}]}}  # fmt: skip
        if kind:
            item["type"] = [{"coding": [{"code": kind}]}]
        diagnosis.append(item)
    return {"resourceType": "Claim", "id": f"c-{eid}", "status": "active",
            "item": [{"sequence": 1, "encounter": [{"reference": f"Encounter/{encounter}"}]}],
            "diagnosis": diagnosis}  # fmt: skip


def _encounter(eid: str, cls: str, type_code: str, who: str, typed: bool, org: str) -> Any:
    participant: dict[str, Any] = {"individual": {"reference": f"Practitioner/{who}"}}
    if typed:
        participant["type"] = [{"coding": [{"code": "PPRF"}]}]
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"code": cls}, "type": [{"coding": [{"code": type_code,
                                                          "display": f"type {type_code}"}]}],
            "participant": [participant],
            "serviceProvider": {"reference": f"Organization/{org}"}}  # fmt: skip


def _coverage(cid: str, patient: str, start: str | None, end: str | None, status: str) -> Any:
    cov: dict[str, Any] = {"resourceType": "Coverage", "id": cid, "status": status,
                           "beneficiary": {"reference": f"Patient/{patient}"}}  # fmt: skip
    if start or end:
        cov["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    return cov


def _condition(cid: str, patient: str, system: str, code: str, status: str = "active") -> Any:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{patient}"},
            "clinicalStatus": {"coding": [{"code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}}  # fmt: skip


def _a1c(oid: str, patient: str, day: str, value: float) -> Any:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "effectiveDateTime": f"{day}T09:00:00-05:00",
            "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org",
                              "code": "%"}}  # fmt: skip


def claims_fixture() -> list[dict[str, Any]]:
    """p1 (diabetes, last HbA1c 10.2), p2 (diabetes, 7.0 in period, 11 before), p3 (no
    diabetes), p4 (coverage in March-April only), p5 (resolved diabetes, no coverage).

    Member months in 2026: p1 12 (open coverage), p2 6 (to June 30), p3 12 (no
    period), p4 2 (a cancelled coverage and 15 March-10 April): 32.
    """
    sub = {"submitted": 0.0}
    return [
        {"resourceType": "Organization", "id": "d1", "name": "Clinic One"},
        {"resourceType": "Organization", "id": "d2", "name": "Emergency"},
        _coverage("v1", "p1", "2025-06-01", None, "active"),
        _coverage("v2", "p2", "2026-01-01", "2026-06-30", "active"),
        _coverage("v3", "p3", None, None, "active"),
        _coverage("v4", "p4", "2026-01-01", None, "cancelled"),
        _coverage("v5", "p4", "2026-03-15", "2026-04-10", "active"),
        _encounter("e1", "AMB", "follow-up", "a", True, "d1"),
        _encounter("e2", "EMER", "ed-visit", "b", False, "d2"),
        _encounter("e3", "AMB", "follow-up", "a", True, "d1"),
        _eob("x1", "p1", "2026-01-10", {"submitted": 200, "eligible": 100, "benefit": 80}),
        _claim("x1", "e1", [(1, "I10", None), (2, "E11.9", "principal")]),
        _eob("x2", "p2", "2026-02-03", {"submitted": 150.5, "eligible": 75.25, "benefit": 60.2}),
        _claim("x2", "e3", [(1, "E11.9", None)]),
        _eob("x3", "p3", "2026-02-20", {"submitted": 1000, "eligible": 400}, provider=None,
             payment=350),
        _claim("x3", "e2", [(1, "S93.401A", None)]),
        _eob("x4", "p1", "2025-12-31", {"submitted": 999, "eligible": 999, "benefit": 999}),
        _claim("x4", "e1", [(1, "E11.9", None)]),
        _eob("x5", "p3", "2026-03-01", {**sub, "eligible": 50}, status="entered-in-error"),
        _condition("k1", "p1", "http://snomed.info/sct", "44054006"),
        _condition("k2", "p2", ICD, "E10.9"),
        _condition("k3", "p5", ICD, "E11.9", status="resolved"),
        _condition("k4", "p3", ICD, "I10"),
        _a1c("o1", "p1", "2026-01-05", 8.0),
        _a1c("o2", "p1", "2026-05-01", 10.2),
        _a1c("o3", "p2", "2026-03-01", 7.0),
        _a1c("o4", "p2", "2025-12-01", 11.0),
    ]  # fmt: skip


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[SqlEngine]:
    if request.param == "postgres":
        with SqlEngine("postgres", database=request.getfixturevalue("postgres_url")) as eng:
            yield eng
    else:
        with SqlEngine(threads=1) as eng:
            yield eng


@pytest.fixture(scope="module")
def inputs() -> dict[str, pa.Table]:
    return read_cost(claims_fixture())


def _by(table: pa.Table, key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in table.to_pylist()}


def test_cost_tables(engine: SqlEngine, inputs: dict[str, pa.Table]) -> None:
    out = cost_of_care(inputs, PERIOD, engine)
    totals = out["totals"].to_pylist()[0]
    assert {k: totals[k] for k in ("claims", "patients", "billed_cents", "allowed_cents",
                                   "paid_cents", "patient_share_cents", "member_months",
                                   "members")} == {
        "claims": 3, "patients": 3, "billed_cents": 135050, "allowed_cents": 57525,
        "paid_cents": 49020, "patient_share_cents": 8505, "member_months": 32, "members": 4,
    }  # fmt: skip
    assert totals["pmpm"] == pytest.approx(575.25 / 32, rel=1e-12)
    months = _by(out["months"], "month")
    assert len(months) == 12
    assert [months[f"2026-{m:02d}"]["member_months"] for m in range(1, 13)] == [
        3, 3, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2,
    ]  # fmt: skip
    assert months["2026-02"]["allowed_cents"] == 47525
    assert months["2026-02"]["pmpm"] == pytest.approx(475.25 / 3, rel=1e-12)
    assert months["2026-03"]["allowed_cents"] == 0
    types = _by(out["encounter_types"], "type_code")
    assert (types["follow-up"]["encounters"], types["follow-up"]["allowed_cents"]) == (2, 17525)
    assert types["follow-up"]["allowed_per_encounter"] == pytest.approx(87.625, rel=1e-12)
    assert (types["ed-visit"]["class_code"], types["ed-visit"]["allowed_cents"]) == ("EMER", 40000)
    conditions = _by(out["conditions"], "dx_code")
    assert set(conditions) == {"E11.9", "S93.401A"}
    assert (conditions["E11.9"]["claims"], conditions["E11.9"]["allowed_cents"]) == (2, 17525)
    clinicians = _by(out["clinicians"], "clinician_id")
    assert (clinicians["a"]["allowed_cents"], clinicians["b"]["allowed_cents"]) == (17525, 40000)
    departments = _by(out["departments"], "department_id")
    assert departments["d2"]["department"] == "Emergency"
    assert (departments["d1"]["allowed_cents"], departments["d2"]["allowed_cents"]) == (
        17525, 40000,
    )  # fmt: skip
    pops = _by(out["populations"], "population")
    poor = pops["diabetes, HbA1c > 9% or not tested"]
    assert (poor["patients"], poor["allowed_cents"], poor["member_months"]) == (1, 10000, 12)
    assert poor["pmpm"] == pytest.approx(100 / 12, rel=1e-12)
    good = pops["diabetes, HbA1c <= 9%"]
    assert (good["patients"], good["allowed_cents"], good["member_months"]) == (1, 7525, 6)
    other = pops["other"]
    assert (other["patients"], other["members"], other["member_months"]) == (1, 2, 14)


def test_given_populations(inputs: dict[str, pa.Table]) -> None:
    membership = pa.table({"patient_id": ["p1", "p2", "p4"],
                           "population": ["numerator", "denominator", "denominator"]})  # fmt: skip
    with SqlEngine(threads=1) as engine:
        out = cost_of_care(inputs, PERIOD, engine, populations=membership)
    pops = _by(out["populations"], "population")
    assert set(pops) == {"numerator", "denominator", "other"}
    assert (pops["denominator"]["allowed_cents"], pops["denominator"]["member_months"]) == (
        7525, 8,
    )  # fmt: skip
    assert pops["other"]["allowed_cents"] == 40000


def test_missing_input_is_named(inputs: dict[str, pa.Table]) -> None:
    partial = {k: v for k, v in inputs.items() if k != "coverage"}
    with SqlEngine() as engine, pytest.raises(ValueError, match="coverage"):
        cost_of_care(partial, PERIOD, engine)


def _exact(row: dict[str, Any]) -> str:
    return repr([v for v in row.values() if not isinstance(v, float)])


def test_duckdb_and_postgres_agree_on_synthetic_system(tmp_path: Any, postgres_url: str) -> None:
    from cmio.synth.generate import SynthConfig, generate

    generate(SynthConfig(patients=40, out=tmp_path / "synth", seed=3))
    data = read_cost(tmp_path / "synth")
    period = Period.parse("2025-01/2026-12")
    with SqlEngine(threads=1) as duck, SqlEngine("postgres", database=postgres_url) as pg:
        a, b = cost_of_care(data, period, duck), cost_of_care(data, period, pg)
    assert a["totals"].to_pylist()[0]["claims"] > 50
    for name in a:
        rows_a = sorted(a[name].to_pylist(), key=_exact)
        rows_b = sorted(b[name].to_pylist(), key=_exact)
        assert len(rows_a) == len(rows_b), name
        for x, y in zip(rows_a, rows_b, strict=True):
            assert x == pytest.approx(y, rel=1e-9), name
