"""The measure framework: definitions, macros, scoring, reports, care gaps, value sets."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cmio.measures import (
    MeasureDefinitionError,
    Period,
    builtin_measures,
    evaluate_measures,
    measure_from_resource,
    measure_from_yaml,
)
from cmio.measures.caregaps import care_gaps_parameters, care_gaps_table
from cmio.measures.report import measure_report
from cmio.measures.sql import expand_macros
from cmio.measures.valuesets import builtin_valuesets, expand_valuesets
from tests.measures.builders import LOINC, observation, patient

PERIOD = Period(date(2026, 1, 1), date(2026, 12, 31))


def test_every_shipped_measure_round_trips_through_a_measure_resource() -> None:
    for measure in builtin_measures().values():
        resource = measure.to_resource()
        assert resource["resourceType"] == "Measure"
        population = resource["group"][0]["population"][0]
        assert population["criteria"]["language"] == "application/sql"
        assert measure_from_resource(resource) == measure
    assert sorted(builtin_measures()) == ["CMS122", "CMS125", "CMS130", "CMS165", "CMS2"]


@pytest.mark.parametrize(
    ("data", "element"),
    [
        ({"populations": {}}, "id"),
        ({"id": "x", "scoring": "odd", "populations": {}}, "scoring"),
        ({"id": "x", "populations": {"initial-population": "SELECT 1"}}, "populations.denominator"),
        ({"id": "x", "populations": {"numerators": "SELECT 1"}}, "populations"),
        (
            {
                "id": "x",
                "scoring": "continuous-variable",
                "populations": {"initial-population": "a", "measure-population": "b"},
            },
            "observation",
        ),
    ],
)
def test_invalid_definitions_name_the_element(data: dict[str, Any], element: str) -> None:
    with pytest.raises(MeasureDefinitionError) as info:
        measure_from_yaml(data)
    assert info.value.element == element


def test_resource_without_sql_criteria_is_refused() -> None:
    resource = builtin_measures()["CMS2"].to_resource()
    resource["group"][0]["population"][0]["criteria"]["language"] = "text/cql"
    with pytest.raises(MeasureDefinitionError) as info:
        measure_from_resource(resource)
    assert info.value.element == "Measure.group[0].population[0].criteria"


def test_macros_expand_dates_ages_and_value_sets() -> None:
    used: set[str] = set()
    sql = expand_macros("{start-15m} {end-9y} {start+6m-1d} {in:o:Diabetes,HbA1c}", PERIOD, used)
    assert "'2024-10-01'" in sql and "'2017-12-31'" in sql and "'2026-06-30'" in sql
    assert "IN ('Diabetes', 'HbA1c')" in sql and used == {"Diabetes", "HbA1c"}
    assert "12 * 100" not in expand_macros("{age_end:p.birth_date}", PERIOD)
    with pytest.raises(MeasureDefinitionError):
        expand_macros("{stat}", PERIOD)
    with pytest.raises(ValueError):
        Period.parse("2026-12-31/2026-01-01")
    leap = expand_macros("{start-2y}", Period(date(2028, 2, 29), date(2028, 12, 31)))
    assert "'2026-02-28'" in leap


def test_shipped_value_sets_expand_through_the_terminology_service() -> None:
    library = builtin_valuesets()
    table = expand_valuesets(["HbA1cLaboratoryTest", "Mammography"], library)
    members = set(zip(table["valueset"].to_pylist(), table["code"].to_pylist(), strict=True))
    assert ("HbA1cLaboratoryTest", "4548-4") in members and ("Mammography", "24606-6") in members
    assert all(url.startswith("http://cts.nlm.nih.gov/") for url in table["url"].to_pylist())


A1C = (LOINC, "4548-4")
CUSTOM = {
    "id": "A1cAverage",
    "scoring": "continuous-variable",
    "aggregate": "average",
    "stratifiers": ["sex"],
    "populations": {
        "initial-population": "SELECT patient_id FROM mp_patient",
        "measure-population": "SELECT DISTINCT patient_id FROM observations WHERE {in:observations:HbA1cLaboratoryTest}",
        "measure-population-exclusion": "SELECT patient_id FROM mp_patient WHERE gender = 'other'",
    },
    "observation": (
        "SELECT o.patient_id, AVG(o.value_num) AS value FROM observations AS o"
        " WHERE {in:o:HbA1cLaboratoryTest} AND o.day BETWEEN {start} AND {end} GROUP BY o.patient_id"
    ),
}


def _resources() -> list[dict[str, Any]]:
    return [
        patient("a", "1970-01-01", "female"),
        patient("b", "1970-01-01", "male"),
        patient("c", "1970-01-01", "other"),
        patient("d", "1970-01-01", "male"),
        observation("a", A1C, "2026-02-01", 6.0),
        observation("a", A1C, "2026-03-01", 8.0),
        observation("b", A1C, "2026-02-01", 10.0),
        observation("c", A1C, "2026-02-01", 20.0),
    ]


def test_continuous_variable_scoring_and_stratifiers() -> None:
    [result] = evaluate_measures([measure_from_yaml(CUSTOM)], PERIOD, _resources())
    assert dict(result.counts) == {
        "initial_population": 4,
        "measure_population": 3,
        "measure_population_exclusion": 1,
    }
    assert result.score == pytest.approx((7.0 + 10.0) / 2)
    strata = {r["stratum"]: r for r in result.strata.to_pylist()}
    assert (
        strata["male"]["score"] == pytest.approx(10.0) and strata["male"]["initial_population"] == 2
    )
    assert strata["other"]["score"] is None


def test_ratio_scoring_does_not_nest_numerator_in_denominator() -> None:
    ratio = {
        "id": "Ratio",
        "scoring": "ratio",
        "populations": {
            "initial-population": "SELECT patient_id FROM mp_patient",
            "denominator": "SELECT patient_id FROM mp_patient WHERE gender = 'male'",
            "numerator": "SELECT DISTINCT patient_id FROM observations",
        },
    }
    [result] = evaluate_measures([measure_from_yaml(ratio)], PERIOD, _resources())
    assert result.counts["denominator"] == 2 and result.counts["numerator"] == 3
    assert result.score == pytest.approx(1.5)


def test_reports_and_care_gaps_have_the_fhir_shapes() -> None:
    resources = [
        *_resources(),
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}],
            "subject": {"reference": "Patient/a"},
            "participant": [{"individual": {"reference": "Practitioner/dr1"}}],
            "period": {"start": "2026-04-01T09:00:00Z", "end": "2026-04-01T09:20:00Z"},
        },
    ]
    [result] = evaluate_measures([builtin_measures()["CMS125"]], PERIOD, resources)
    summary = measure_report(result, "summary")
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in summary["group"][0]["population"]}
    assert counts == {
        "initial-population": 1,
        "denominator": 1,
        "denominator-exclusion": 0,
        "numerator": 0,
    }
    assert summary["group"][0]["measureScore"]["value"] == 0
    listed = measure_report(result, "subject-list")
    lists = {c["id"]: c for c in listed["contained"]}
    assert lists["list-denominator"]["entry"] == [{"item": {"reference": "Patient/a"}}]
    assert listed["group"][0]["population"][1]["subjectResults"] == {
        "reference": "#list-denominator"
    }
    single = measure_report(result, "individual", "b")
    assert all(p["count"] == 0 for p in single["group"][0]["population"])
    with pytest.raises(ValueError):
        measure_report(result, "individual")
    table = care_gaps_table([result])
    assert table.to_pylist()[0]["clinician"] == "Practitioner/dr1"
    answer = care_gaps_parameters([result], ["a", "b"])
    [returned] = answer["parameter"]
    bundle = returned["resource"]
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert bundle["type"] == "document" and kinds == [
        "Composition",
        "MeasureReport",
        "DetectedIssue",
    ]
    issue = bundle["entry"][2]["resource"]
    assert issue["patient"] == {"reference": "Patient/a"}
    assert issue["modifierExtension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "open-gap"
    assert issue["author"] == {"reference": "Practitioner/dr1"}
