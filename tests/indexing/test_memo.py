"""Rows remembered per JSON value (cmio.indexing.memo) equal the adders' own rows."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from cmio.indexing import SearchIndexer
from cmio.indexing import values as v
from cmio.indexing.direct import plan_direct
from cmio.indexing.extract import search_expression
from cmio.indexing.memo import Adder, memoize
from cmio.model import Model, load_model

CODING = {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}
VALUES: list[Any] = [
    {"coding": [CODING], "text": "Blood pressure"},
    {"coding": [CODING]},
    CODING,
    {"system": "http://x", "value": "1", "type": {"coding": [{"system": "s", "code": "MR"}]}},
    {"system": "phone", "value": "555"},
    {"reference": "Patient/p1", "identifier": {"system": "s", "value": "v"}},
    {"reference": "http://x/fhir/Patient/p1/_history/2"},
    {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    {"value": 120.0, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    {"value": 1, "currency": "EUR"},
    {"low": {"value": 1, "code": "a"}, "high": {"value": 2, "code": "a"}},
    {"start": "2026-01-02", "end": "2026-01-03T04:05:06Z"},
    {"event": ["2026-01-01"], "repeat": {"boundsPeriod": {"start": "2026"}}},
    {"family": "Ö", "given": ["A", "B"]},
    {"line": ["1"], "city": "C"},
    {"value": True},
    {"text": "only text"},
    {},
    "final",
    True,
    3,
    None,
]


@cache
def _model() -> Model:
    return load_model()


def _adders() -> dict[str, Adder]:
    units: dict[str, Any] = {}
    return {
        "string": v.add_string,
        "token": v.add_token,
        "date": v.add_date,
        "number": v.add_number,
        "uri": v.add_uri,
        "quantity": lambda out, code, value: v.add_quantity(out, code, value, units),
        "reference": lambda out, code, value: v.add_reference(out, code, value, ("Patient",)),
    }


def test_memoized_adders_append_what_the_adders_append() -> None:
    """Every adder on every sample value, twice (the second time from the memo) and
    under two parameter names: the same rows in the same order, the same tables in
    the same order (empty ones included), and the value left unchanged."""
    for name, adder in _adders().items():
        memoized = memoize(adder, limit=4)  # small: the memo is also emptied on the way
        for _ in range(2):
            for code in ("code", "combo-code$0:1"):
                plain: v.Rows = {"existing": [("x",)]}
                remembered: v.Rows = {"existing": [("x",)]}
                for value in VALUES:
                    before = copy.deepcopy(value)
                    adder(plain, code, value)
                    memoized(remembered, code, value)
                    assert value == before
                    assert list(plain.items()) == list(remembered.items()), (name, value)


def test_memoized_rows_are_not_shared_lists() -> None:
    """Appending to what a memoized adder filled does not change the memo."""
    memoized = memoize(v.add_token)
    first: v.Rows = {}
    memoized(first, "code", {"coding": [CODING]})
    first["token_index"].append(("junk",))
    second: v.Rows = {}
    memoized(second, "code", {"coding": [CODING]})
    assert second["token_index"] == [("code", "http://loinc.org", "8480-6")]


def test_direct_plan_keys_are_what_the_walk_reads() -> None:
    """A resource holding none of a plan's keys gets no values from it, and the keys
    name only the properties read (``value-concept`` is not every ``value[x]``)."""
    model = _model()
    indexer = SearchIndexer(model)
    types = indexer.engine.types
    value_concept = plan_direct(
        types, "Observation", "Observation.value.ofType(CodeableConcept)", None
    )
    assert value_concept is not None
    assert value_concept.keys() == {"valueCodeableConcept"}
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [CODING]},
        "valueQuantity": {"value": 1},
        "_status": {"id": "s"},
    }
    for spd in model.search_params_for("Observation").values():
        expression = search_expression(spd, "Observation")
        plan = plan_direct(types, "Observation", expression) if expression else None
        if plan is None:
            continue
        if plan.keys().isdisjoint(resource):
            assert plan.values(resource) == [], spd.code
    status = plan_direct(types, "Observation", "Observation.status", None)
    assert status is not None
    assert status.keys() == {"status", "_status"}  # the twin makes the walk hand over
    assert status.values(resource) is None


def test_long_values_are_not_remembered() -> None:
    """A value longer than MAX_KEY serialized (SampledData's data, a Bundle's first
    resource) goes to the adder every time: the memo's memory stays bounded."""
    from cmio.indexing.memo import MAX_KEY

    calls: list[Any] = []

    def adder(out: Any, code: str, value: Any) -> None:
        calls.append(value)
        out.setdefault("token_index", []).append((code, None, str(len(value))))

    add = memoize(adder)
    long = {"data": "1 " * MAX_KEY, "period": 10}
    short = {"data": "1 2 3", "period": 10}
    for value in (long, long, short, short):
        out: dict[str, list[Any]] = {}
        add(out, "value", value)
        assert out == {"token_index": [("value", None, "2")]}
    assert calls == [long, long, short]
