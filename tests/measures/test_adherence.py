"""Standards adherence and data quality on hand-written resources, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from cmio.measures.adherence import ICD10CM, LOINC, UCUM, data_quality, read_adherence
from cmio.measures.adherence_dupes import normalize, soundex
from cmio.measures.ehr_use import SqlEngine
from cmio.terminology.resources import TerminologyResources

EHR, REG = "urn:app:ehr", "urn:app:registration"
SNOMED = "http://snomed.info/sct"


def _code_system(url: str, codes: dict[str, bool]) -> dict[str, Any]:
    concepts = []
    for code, active in codes.items():
        concept: dict[str, Any] = {"code": code, "display": code}
        if not active:
            concept["property"] = [{"code": "status", "valueCode": "deprecated"},
                                   {"code": "inactive", "valueBoolean": True}]  # fmt: skip
        concepts.append(concept)
    return {"resourceType": "CodeSystem", "id": url.rsplit("/", 1)[-1], "url": url,
            "status": "active", "content": "complete", "concept": concepts}  # fmt: skip


def terminology() -> TerminologyResources:
    """ICD-10-CM and LOINC fragments known completely (E10 deprecated); no SNOMED CT."""
    systems = [
        _code_system(ICD10CM, {"E11.9": True, "E10": False}),
        _code_system(LOINC, {"4548-4": True, "8480-6": True, "85354-9": True}),
    ]
    return TerminologyResources(None, core=lambda: systems)


def _patient(pid: str, given: str | None, family: str | None, birth: str | None,
             gender: str | None, phone: str | None, postal: str | None,
             identifier: bool) -> dict[str, Any]:  # fmt: skip
    p: dict[str, Any] = {"resourceType": "Patient", "id": pid, "meta": {"source": REG}}
    if given or family:
        p["name"] = [{"family": family, "given": [given]}]
    if birth:
        p["birthDate"] = birth
    if gender:
        p["gender"] = gender
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    if postal:
        p["address"] = [{"postalCode": postal}]
    if identifier:
        p["identifier"] = [{"system": "urn:mrn", "value": pid}]
    return p


def _condition(cid: str, codings: list[tuple[str, str]], *, source: str | None = EHR,
               subject: bool = True, text: str | None = None) -> dict[str, Any]:  # fmt: skip
    c: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": s, "code": k} for s, k in codings]},
    }
    if text:
        c["code"] = {"text": text}
    if source:
        c["meta"] = {"source": source}
    if subject:
        c["subject"] = {"reference": "Patient/pt1"}
    return c


def _quantity(value: float, unit: str | None, system: str | None, code: str | None) -> Any:
    q: dict[str, Any] = {"value": value}
    q.update({k: v for k, v in (("unit", unit), ("system", system), ("code", code)) if v})
    return q


def _obs(oid: str, loinc: str, value: Any = None, components: list[Any] | None = None,
         complete: bool = True) -> dict[str, Any]:  # fmt: skip
    o: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final",
                         "meta": {"source": EHR},
                         "code": {"coding": [{"system": LOINC, "code": loinc}]}}  # fmt: skip
    if complete:
        o["subject"] = {"reference": "Patient/pt1"}
        o["effectiveDateTime"] = "2026-03-02"
    if value is not None:
        o["valueQuantity"] = value
    if components:
        o["component"] = [{"code": {"text": "c"}, "valueQuantity": q} for q in components]
    return o


def resources() -> list[dict[str, Any]]:
    """Patients: pt1/pt2 (Ann Smith / Anne Smyth, same phone: 0.65) and pt1/pt3 (same
    names, other sex: exactly 0.6) are suspected duplicates; pt4 (Bob) is not; pt5 lacks
    name, sex and birth date; pt3-pt5 lack an identifier. Conditions (EHR): c1 valid,
    c2 local code only, c3 local + SNOMED CT (unchecked), c4 unknown ICD-10-CM code,
    c5 deprecated, c6 text only and no subject; c7 arrived through HL7 v2 (no
    meta.source, MessageHeader focus). Observations: o3's LOINC code is unknown;
    quantities: % (ok), mmhg (not UCUM), cells without system, two mm[Hg] components."""
    return [
        _patient("pt1", "Ann", "Smith", "1980-01-01", "female", "(555) 123-4567",
                 "43210-1234", True),
        _patient("pt2", "Anne", "Smyth", "1980-01-01", "female", "555.123.4567", "43210", True),
        _patient("pt3", "Ann", "Smith", "1980-01-01", "male", None, "10001", False),
        _patient("pt4", "Bob", "Smith", "1980-01-01", "male", None, None, False),
        _patient("pt5", None, None, None, None, None, None, False),
        _condition("c1", [(ICD10CM, "E11.9")]),
        _condition("c2", [("urn:local:dx", "X1")]),
        _condition("c3", [("urn:local:dx", "X2"), (SNOMED, "44054006")]),
        _condition("c4", [(ICD10CM, "E11.99x")]),
        _condition("c5", [(ICD10CM, "E10")]),
        _condition("c6", [], text="sugar", subject=False),
        _condition("c7", [(ICD10CM, "E11.9")], source=None),
        {"resourceType": "MessageHeader", "id": "m1",
         "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                         "code": "A01"},
         "source": {"name": "LAB", "endpoint": "mllp://lab"},
         "focus": [{"reference": "Condition/c7"}]},
        _obs("o1", "4548-4", _quantity(7, "%", UCUM, "%")),
        _obs("o2", "8480-6", _quantity(120, "mmHg", UCUM, "mmhg")),
        _obs("o3", "9999-9", _quantity(5, "cells", None, None)),
        _obs("o4", "85354-9", components=[_quantity(120, "mmHg", UCUM, "mm[Hg]"),
                                          _quantity(80, "mmHg", UCUM, "mm[Hg]")]),
        _obs("o5", "4548-4", complete=False),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def inputs() -> dict[str, pa.Table]:
    return read_adherence(resources())


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[SqlEngine]:
    if request.param == "postgres":
        with SqlEngine("postgres", database=request.getfixturevalue("postgres_url")) as eng:
            yield eng
    else:
        with SqlEngine(threads=1) as eng:
            yield eng


def _by(table: pa.Table, *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in table.to_pylist()}


def test_data_quality(engine: SqlEngine, inputs: dict[str, pa.Table]) -> None:
    out = data_quality(inputs, engine, terminology())
    coding = _by(out["coding"], "resource_type", "source")
    cond = coding[("Condition", EHR)]
    assert (cond["elements"], cond["standard_elements"]) == (6, 4)
    assert (coding[("Condition", "hl7v2:LAB")]["elements"],) == (1,)
    assert coding[("Observation", EHR)]["standard_share"] == 1.0

    codes = _by(out["codes"], "resource_type", "source")
    c = codes[("Condition", EHR)]
    assert (c["codings"], c["valid"], c["invalid"], c["deprecated"], c["unchecked"]) == (
        6, 1, 1, 1, 3,
    )  # fmt: skip
    assert c["valid_share"] == pytest.approx(1 / 3, rel=1e-12)
    assert codes[("Observation", EHR)]["valid_share"] == pytest.approx(0.8, rel=1e-12)
    issues = {(r["code"], r["status"]) for r in out["code_issues"].to_pylist()}
    assert issues == {("E11.99x", "invalid"), ("E10", "deprecated"), ("9999-9", "invalid")}

    required = _by(out["required"], "resource_type", "element")
    assert required[("Patient", "identifier")]["missing"] == 3
    assert [required[("Patient", e)]["missing"] for e in ("name", "gender", "birthDate")] == [
        1, 1, 1,
    ]  # fmt: skip
    assert required[("Condition", "subject")]["missing"] == 1
    assert required[("Observation", "effective")]["missing"] == 1
    assert required[("Observation", "status")]["missing"] == 0

    units = _by(out["units"], "resource_type")[("Observation",)]
    assert (units["quantities"], units["conformant"]) == (5, 3)
    unit_issues = {(r["code"], r["reason"] is not None, r["uses"])
                   for r in out["unit_issues"].to_pylist()}  # fmt: skip
    assert unit_issues == {("mmhg", True, 1), (None, True, 1)}

    pairs = {(r["patient_a"], r["patient_b"]): r["score"] for r in out["duplicates"].to_pylist()}
    assert pairs == {("pt1", "pt2"): pytest.approx(0.65), ("pt1", "pt3"): pytest.approx(0.6)}

    score = _by(out["score"], "resource_type", "source")
    row = score[("Condition", EHR)]
    assert row["ucum_share"] is None
    assert row["score"] == pytest.approx(100 * (4 / 6 + 1 / 3 + 5 / 6) / 3, rel=1e-12)
    assert ("*", "*") in score


def test_phonetic_keys() -> None:
    assert [soundex(n) for n in ("Robert", "Rupert", "Ashcraft", "Tymczak", "Pfister")] == [
        "R163", "R163", "A261", "T522", "P236",
    ]  # fmt: skip
    assert soundex("Smith") == soundex("Smyth") == "S530"
    assert normalize("Zoë O'Brien-Núñez") == "zoeobriennunez"
    assert soundex("") == ""


def test_concept_store_codes_are_checked_in_batches(tmp_path: Any) -> None:
    from cmio.measures.adherence import check_codes
    from cmio.terminology.concept_types import Concept, SystemInfo
    from cmio.terminology.concepts import ConceptStore

    store = ConceptStore(tmp_path / "concepts.db")
    try:
        concepts = [Concept(code=f"C{i}") for i in range(1200)] + [
            Concept(code="OLD", active=False)
        ]
        store.load(SystemInfo(url="urn:big", version="1"), concepts)
        resources = TerminologyResources(None, concepts=store)
        pairs = [("urn:big", f"C{i}") for i in range(0, 1200, 2)]
        pairs += [("urn:big", "OLD"), ("urn:big", "NOPE"), ("urn:big", "C0")]
        table = check_codes(pairs, resources)
    finally:
        store.close()
    status = dict(zip(table["code"].to_pylist(), table["status"].to_pylist(), strict=True))
    assert len(status) == 602
    assert (status["C0"], status["OLD"], status["NOPE"]) == ("valid", "deprecated", "invalid")
