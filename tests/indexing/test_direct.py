"""The direct JSON walk of search expressions returns what the FHIRPath engine returns."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from cmio.fhirpath.temporal import Temporal
from cmio.indexing import SearchIndexer
from cmio.indexing.direct import plan_direct
from cmio.indexing.extract import search_expression
from cmio.model import Model, load_model

CODE = {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]}
REF = {"reference": "Patient/p1", "display": "x"}
OBSERVATIONS: list[dict[str, Any]] = [
    {"valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
    {"valueCodeableConcept": {"text": "t", "coding": [{"code": "y", "display": "d"}]}},
    {"valueString": "positive", "effectiveDateTime": "2026-01-02T03:04:05+01:00"},
    {"valueDateTime": "2026-01-02", "effectivePeriod": {"start": "2026-01-02"}},
    {"valuePeriod": {"start": "2026-01-02", "end": "2026-01-03"}, "issued": "2026-01-02T03:04Z"},
    {"valueInteger": 4, "effectiveInstant": "2026-01-02T03:04:05.123Z"},
    {"valueBoolean": True, "effectiveDateTime": "not a date"},
    {"valueString": "a", "_valueString": {"extension": [{"url": "u", "valueCode": "c"}]}},
    {"_effectiveDateTime": {"extension": [{"url": "u", "valueCode": "x"}]}},
    {"valueQuantity": {"value": 1}, "valueString": "two values of one choice"},
    {"valueCodeableConcept": {"text": "t", "_text": {"id": "x"}}},
    {"valueCodeableConcept": {"text": "t"}, "valueString": "t"},
    {"valueCodeableConcept": [{"text": "a list"}]},
    {"component": [{"code": CODE, "valueQuantity": {"value": 80}}, {"code": CODE}]},
    {"component": [{"code": CODE}, "not an object"]},
    {"category": [None, CODE], "performer": [REF, None], "subject": REF},
    {"category": CODE, "focus": {"reference": "Group/g"}, "subject": "not an object"},
    {"code": {"coding": [{"code": "a"}]}, "component": [{"code": {"coding": [{"code": "a"}]}}]},
]
OTHERS: list[dict[str, Any]] = [
    {
        "resourceType": "Patient",
        "name": [{"family": "Ö", "given": ["A", None, "B"], "_given": [None, {"id": "x"}]}],
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "e"}],
        "birthDate": "1970-02",
        "deceasedBoolean": False,
        "address": [{"city": "C", "line": ["1", "2"]}],
        "multipleBirthInteger": 2,
    },
    {
        "resourceType": "Condition",
        "subject": REF,
        "onsetAge": {"value": 3, "unit": "a", "code": "a", "system": "http://unitsofmeasure.org"},
        "abatementString": "later",
        "recordedDate": "2026-01-02T03:04:05Z",
    },
    {"resourceType": "Condition", "onsetRange": {"low": {"value": 1}}, "recordedDate": "2026"},
    {
        "resourceType": "Encounter",
        "period": {"start": "2026-01-02T03:04:05+02:00", "end": "2026-01-03"},
        "participant": [{"individual": REF, "type": [CODE]}, {"period": {"end": "2026"}}],
        "length": {"value": 2.50, "unit": "h"},
    },
    {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": CODE,
        "authoredOn": "2026-01-02T03:04:05Z",
        "dosageInstruction": [{"timing": {"event": ["2026-01-01", "2026-01-05"]}}],
    },
]


@cache
def _model() -> Model:
    return load_model()


def _resources() -> list[dict[str, Any]]:
    out = [
        {"resourceType": "Observation", "id": "o", "status": "final", "code": CODE, **extra}
        for extra in OBSERVATIONS
    ]
    return out + [{"id": "x", **r} for r in OTHERS]


def test_direct_values_equal_the_engine() -> None:
    """For every search parameter of the types above, on every sample resource, the
    direct walk answers exactly what ``evaluate`` returns, or hands over (None)."""
    model = _model()
    indexer = SearchIndexer(model)
    planned = handed_over = 0
    for resource in _resources():
        rtype = resource["resourceType"]
        for spd in model.search_params_for(rtype).values():
            expression = search_expression(spd, rtype)
            if expression is None:
                continue
            plan = plan_direct(indexer.engine.types, rtype, expression)
            if plan is None:
                continue
            planned += 1
            before = copy.deepcopy(resource)
            try:
                expected: list[Any] | None = indexer.engine.compile(expression).evaluate(resource)
            except Exception:
                expected = None
            try:
                found = plan.values(resource)
            except Exception:
                found = None
            assert resource == before
            if found is None:
                handed_over += 1
                continue
            assert expected is not None, (rtype, spd.code, expression)
            assert _plain(found) == _plain(expected), (rtype, spd.code, expression)
    assert planned > 300
    assert 0 < handed_over < planned // 5


def _plain(values: list[Any]) -> list[Any]:
    return [(type(v).__name__, v.iso() if isinstance(v, Temporal) else v) for v in values]


@pytest.mark.parametrize(
    ("rtype", "expression", "direct"),
    [
        ("Observation", "Observation.code", True),
        (
            "Observation",
            "Observation.value.ofType(Quantity) | Observation.value.ofType(SampledData)",
            True,
        ),
        ("Observation", "Observation.component.value.ofType(CodeableConcept)", True),
        (  # value-string: a member after the type filter
            "Observation",
            "Observation.value.ofType(string) | Observation.value.ofType(CodeableConcept).text",
            True,
        ),
        ("Observation", "Observation.value.ofType(Quantity).code", True),
        ("Observation", "Observation.value.ofType(string).id", False),  # a primitive's member
        ("Patient", "Patient.name.given", True),
        ("Patient", "Patient.telecom.where(system='phone')", False),
        ("Patient", "Patient.deceased.exists() and Patient.deceased != false", False),
        ("Observation", "Observation.value.ofType(NoSuchType)", False),
    ],
)
def test_which_expressions_are_planned(rtype: str, expression: str, direct: bool) -> None:
    types = SearchIndexer(_model()).engine.types
    assert (plan_direct(types, rtype, expression) is not None) is direct


def test_date_parameters_read_the_printed_text() -> None:
    """A date parameter's plan loads dates as the text ``add_date`` would print them,
    and the rows equal those of the engine's parsed values."""
    from cmio.indexing import values as v

    model = _model()
    indexer = SearchIndexer(model)
    memo: dict[Any, dict[str, str]] = {}
    texts = ["2026-01-02T03:04:05+01:00", "2026-01-02T03:04:05.120Z", "2026-01", "2026-13-01"]
    for text in texts + texts:  # the second round reads the memo
        resource = {"resourceType": "Observation", "code": CODE, "effectiveDateTime": text}
        plan = plan_direct(indexer.engine.types, "Observation", "Observation.effective", memo)
        assert plan is not None
        found = plan.values(resource)
        assert found is not None
        direct: v.Rows = {}
        engine: v.Rows = {}
        for value in found:
            v.add_date(direct, "date", value, {})
        for value in indexer.engine.compile("Observation.effective").evaluate(resource):
            v.add_date(engine, "date", value)
        assert direct == engine, text
    assert sum(len(texts_of) for texts_of in memo.values()) == 3  # the valid ones


def test_relative_plans_for_composite_components() -> None:
    """Component expressions are planned on the item's type; literals are not paths."""
    from cmio.indexing.direct import plan_relative

    types = SearchIndexer(_model()).engine.types
    component = types.get("Observation").members["component"][0][2]  # type: ignore[union-attr]
    assert component is not None
    plan = plan_relative(types, component, "value.ofType(Quantity)")
    assert plan is not None
    assert plan.values({"code": CODE, "valueQuantity": {"value": 1}}) == [{"value": 1}]
    assert plan.values({"valueString": "x"}) == []
    assert plan_relative(types, component, "true") is None
    assert plan_relative(types, component, "code.exists()") is None


def test_idle_composites_add_nothing() -> None:
    """A composite judged idle by its key set (:meth:`CompositePlan.idle`) adds no row,
    and the rows with idle composites skipped equal those of every composite run."""
    indexer = SearchIndexer(_model())
    for resource in _resources():
        rtype = resource["resourceType"]
        every: dict[str, list[Any]] = {}
        memo: dict[Any, Any] = {}
        for composite in indexer._plan_composites(rtype):
            alone: dict[str, list[Any]] = {}
            composite.add(alone, resource)
            if composite.idle(resource):
                assert not any(alone.values()), (rtype, composite.code)
            composite.add(every, resource, memo)
        rows = indexer.table_rows(resource)
        for table, table_rows in every.items():
            composite_rows = [r for r in rows.get(table, []) if "$" in r[0]]
            assert composite_rows == list(dict.fromkeys(table_rows)), (rtype, table)
    observation = {"resourceType": "Observation", "code": CODE, "valueQuantity": {"value": 1}}
    idle = {c.code for c in indexer._plan_composites("Observation") if c.idle(observation)}
    assert {"code-value-concept", "component-code-value-quantity"} <= idle
    assert "code-value-quantity" not in idle
