"""The engine's API and the FHIR-specific behaviour the official suite does not cover."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from cmio.fhirpath import (
    Date,
    DateTime,
    FhirPathEngine,
    FhirPathError,
    FhirPathSemanticError,
    FhirPathSyntaxError,
    Quantity,
    compile,
    evaluate,
    parse,
)
from cmio.fhirpath.functions import spec
from cmio.model import Model

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
    "managingOrganization": {"reference": "#org"},
    "generalPractitioner": [{"reference": "Practitioner/dr"}, {"reference": "urn:uuid:x"}],
    "birthDate": "1980-05-17",
    "_birthDate": {"extension": [{"url": "http://x/time", "valueTime": "08:30:00"}]},
    "deceasedDateTime": "2020-01-02T03:04:05.678+02:00",
    "name": [{"given": ["Ann"], "family": "Lee"}],
}
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "valueQuantity": {
        "value": 72.5,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    },
    "effectiveDateTime": "2021-03-04",
}


def test_results_are_python_values(engine: FhirPathEngine) -> None:
    assert engine.evaluate(PATIENT, "name.given") == ["Ann"]
    [birth] = engine.evaluate(PATIENT, "birthDate")
    assert isinstance(birth, Date) and str(birth) == "@1980-05-17" and birth.iso() == "1980-05-17"
    [deceased] = engine.evaluate(PATIENT, "deceased")
    assert isinstance(deceased, DateTime)
    assert str(deceased) == "@2020-01-02T03:04:05.678+02:00"
    assert engine.evaluate(OBSERVATION, "value.value") == [Decimal("72.5")]
    assert engine.evaluate(OBSERVATION, "value") == [OBSERVATION["valueQuantity"]]
    [quantity] = engine.evaluate(OBSERVATION, "value.value * 2 'kg'")
    assert isinstance(quantity, Quantity) and str(quantity) == "145.0 'kg'"


def test_typed_results(engine: FhirPathEngine) -> None:
    typed = engine.compile("Observation.value | Observation.status | 1").evaluate_typed(OBSERVATION)
    assert [(t.namespace, t.type) for t in typed] == [
        ("FHIR", "Quantity"),
        ("FHIR", "code"),
        ("System", "Integer"),
    ]


def test_choice_types_and_quantity_units(engine: FhirPathEngine) -> None:
    assert engine.evaluate(OBSERVATION, "Observation.value is Quantity") == [True]
    assert engine.evaluate(OBSERVATION, "Observation.value > 70000 'g'") == [True]
    assert engine.evaluate(OBSERVATION, "Observation.value = 72.5 '[lb_av]'") == [False]
    assert engine.evaluate(OBSERVATION, "(Observation.value as Quantity).unit") == ["kg"]
    assert engine.evaluate(OBSERVATION, "Observation.effective.ofType(dateTime) > @2021") == []
    assert engine.evaluate(OBSERVATION, "Observation.effective > @2021-03-01") == [True]
    with pytest.raises(FhirPathError, match="JSON name"):
        engine.evaluate(OBSERVATION, "Observation.valueQuantity")


def test_primitive_extensions(engine: FhirPathEngine) -> None:
    [time] = engine.evaluate(PATIENT, "birthDate.extension('http://x/time').value")
    assert str(time) == "@T08:30:00"
    assert engine.evaluate(PATIENT, "birthDate.extension.url") == ["http://x/time"]
    assert engine.evaluate(PATIENT, "birthDate.hasValue()") == [True]


def test_resolve_contained_bundle_and_resolver(engine: FhirPathEngine) -> None:
    assert engine.evaluate(PATIENT, "managingOrganization.resolve().name") == ["Acme"]
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Practitioner", "id": "x"}},
            {"fullUrl": "http://s/Patient/p1", "resource": PATIENT},
        ],
    }
    found = engine.evaluate(
        bundle, "Bundle.entry.resource.ofType(Patient).generalPractitioner.resolve().id"
    )
    assert found == ["x"]
    asked: list[str] = []

    def resolver(reference: str) -> dict[str, Any] | None:
        asked.append(reference)
        return (
            {"resourceType": "Practitioner", "id": "dr"} if reference == "Practitioner/dr" else None
        )

    result = engine.evaluate(
        PATIENT, "generalPractitioner.resolve().ofType(Practitioner).id", resolver=resolver
    )
    assert result == ["dr"]
    assert asked == ["Practitioner/dr", "urn:uuid:x"]
    assert engine.evaluate(OBSERVATION, "subject.where(resolve() is Patient)") == []


class _Terminology:
    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        codings = code.get("coding", [code])
        return any(c.get("code") == "29463-7" for c in codings) if valueset == "http://vs" else None


def test_member_of_uses_the_terminology_provider(engine: FhirPathEngine) -> None:
    expression = "Observation.code.memberOf('http://vs')"
    assert engine.evaluate(OBSERVATION, expression) == []
    assert engine.evaluate(OBSERVATION, expression, terminology=_Terminology()) == [True]
    assert engine.evaluate(OBSERVATION, "code.memberOf('other')", terminology=_Terminology()) == []


def test_variables_and_environment(engine: FhirPathEngine) -> None:
    assert engine.evaluate(PATIENT, "%who & '!'", {"who": "me"}) == ["me!"]
    assert engine.evaluate(PATIENT, "%limit + 1", {"limit": 1.5}) == [Decimal("2.5")]
    assert engine.evaluate(PATIENT, "%resource.id | %context.id | %rootResource.id") == ["p1"]
    assert engine.evaluate(PATIENT, "%`vs-administrative-gender`") == [
        "http://hl7.org/fhir/ValueSet/administrative-gender"
    ]
    with pytest.raises(FhirPathError, match="undefined"):
        engine.evaluate(PATIENT, "%nope")


def test_trace_logs_and_passes_through(
    engine: FhirPathEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cmio.fhirpath.trace"):
        assert engine.evaluate(PATIENT, "name.given.trace('g').count()") == [1]
    assert "trace g: ['Ann']" in caplog.text


def test_syntax_errors_have_positions() -> None:
    for text, position in (("name.given(", 11), ("1 +", 3), ("name..given", 5)):
        with pytest.raises(FhirPathSyntaxError) as info:
            parse(text)
        assert info.value.position == position


def test_compile_errors_and_singletons(engine: FhirPathEngine) -> None:
    with pytest.raises(FhirPathError, match="unknown function"):
        engine.compile("name.nope()")
    with pytest.raises(FhirPathError, match="single"):
        engine.evaluate({"resourceType": "Patient", "name": [{}, {}]}, "name.single()")
    with pytest.raises(FhirPathError, match="single"):
        engine.evaluate(PATIENT, "(1 | 2) + 1")


def test_static_check(engine: FhirPathEngine) -> None:
    engine.check("Patient.name.given.first()", "Patient")
    with pytest.raises(FhirPathSemanticError, match="given1"):
        engine.check("Patient.name.given1", "Patient")
    with pytest.raises(FhirPathSemanticError, match="JSON name"):
        engine.check("Observation.valueString", "Observation", strict=False)
    engine.check("Patient.name.given1", "Patient", strict=False)


def test_engine_caches_compilations(engine: FhirPathEngine) -> None:
    assert engine.compile("name.family") is engine.compile("name.family")


def test_module_functions_build_a_throwaway_engine(model: Model) -> None:
    assert evaluate(PATIENT, "name.family", model=model) == ["Lee"]
    assert compile("1 + 1", model=model).evaluate(None) == [2]


def test_evaluation_is_reentrant(engine: FhirPathEngine) -> None:
    compiled = engine.compile("Patient.name.where(given.exists()).select(given.first() & %x)")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(200):
                assert compiled.evaluate(PATIENT, {"x": str(n)}) == [f"Ann{n}"]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_clock(engine: FhirPathEngine) -> None:
    [now] = engine.evaluate(None, "now()")
    [today] = engine.evaluate(None, "today()")
    assert isinstance(now, DateTime) and isinstance(today, Date)
    assert engine.evaluate(None, "now() = now()") == [True]
    assert now.iso().startswith(today.iso())


def test_host_functions_and_aggregates(model: Model) -> None:
    def resource_key(ctx: object, items: list[Any]) -> list[Any]:
        return [f"{item.value['resourceType']}/{item.value['id']}" for item in items]

    engine = FhirPathEngine(model, functions={"getResourceKey": spec(resource_key)})
    assert engine.evaluate(PATIENT, "getResourceKey()") == ["Patient/p1"]
    assert engine.evaluate(None, "(1 | 2 | 3.5).sum()") == [Decimal("6.5")]
    assert engine.evaluate(None, "(1 | 2 | 3).avg()") == [Decimal(2)]
    assert engine.evaluate(None, "('b' | 'a').min() & ('b' | 'a').max()") == ["ab"]
    assert engine.evaluate(None, "{}.sum()") == []
