"""Invariants: mutations raise the exact issue; native checks and guards agree with FHIRPath."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.fhirpath.fhirtypes import Node
from cmio.fhirpath.parser import parse
from cmio.model import Model
from cmio.model.package import find_package_tarball, iter_package_resources
from cmio.validation import Issue
from cmio.validation.invariants import (
    DOM_3,
    _guard,
    contained_are_referenced,
    evaluate_invariant,
)
from cmio.validation.validator import Validator

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "text": {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"},
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2020-01-01",
    "valueQuantity": {
        "value": 70,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    },
}
NARRATIVE = {"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"}


@pytest.fixture(scope="module")
def validator(model: Model) -> Validator:
    return Validator(model)


def _issues(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(i.severity, i.code, i.expression, i.message) for i in validator.validate(resource)]


def _patient(**content: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "text": NARRATIVE, **content}


def test_clean_resources_have_no_issues(validator: Validator) -> None:
    assert validator.validate(OBSERVATION) == []
    assert validator.validate(_patient(gender="male")) == []


def test_pat_1_contact_without_details(validator: Validator) -> None:
    patient = _patient(contact=[{"gender": "female"}, {"name": {"family": "Doe"}}])
    assert _issues(validator, patient) == [
        (
            "error",
            "invariant",
            "Patient.contact[0]",
            "Constraint failed: pat-1: SHALL at least contain a contact's details or a "
            "reference to an organization",
        )
    ]


def test_obs_6_value_and_data_absent_reason(validator: Validator) -> None:
    observation = copy.deepcopy(OBSERVATION)
    observation["dataAbsentReason"] = {"text": "lost"}
    assert _issues(validator, observation) == [
        (
            "error",
            "invariant",
            "Observation",
            "Constraint failed: obs-6: dataAbsentReason SHALL only be present if "
            "Observation.value[x] is not present",
        )
    ]


def test_obs_7_component_repeats_the_code(validator: Validator) -> None:
    observation = copy.deepcopy(OBSERVATION)
    observation["component"] = [{"code": observation["code"], "valueString": "x"}]
    found = _issues(validator, observation)
    assert [(s, c, e, m[:25]) for s, c, e, m in found] == [
        ("error", "invariant", "Observation", "Constraint failed: obs-7:")
    ]


def test_qty_3_code_without_system(validator: Validator) -> None:
    observation = copy.deepcopy(OBSERVATION)
    del observation["valueQuantity"]["system"]
    assert _issues(validator, observation) == [
        (
            "error",
            "invariant",
            "Observation.valueQuantity",
            "Constraint failed: qty-3: If a code for the unit is present, the system SHALL "
            "also be present",
        )
    ]


def test_per_1_period_ends_before_it_starts(validator: Validator) -> None:
    observation = copy.deepcopy(OBSERVATION)
    del observation["effectiveDateTime"]
    observation["effectivePeriod"] = {"start": "2020-02-01", "end": "2020-01-01"}
    assert _issues(validator, observation) == [
        (
            "error",
            "invariant",
            "Observation.effectivePeriod",
            "Constraint failed: per-1: If present, start SHALL have a lower value than end",
        )
    ]


def test_ele_1_element_with_only_an_id(validator: Validator) -> None:
    patient = _patient(name=[{"id": "n1"}], _birthDate={"id": "b1"})
    found = {(s, c, e, m[:24]) for s, c, e, m in _issues(validator, patient)}
    assert found == {
        ("error", "invariant", "Patient.name[0]", "Constraint failed: ele-1"),
        ("error", "invariant", "Patient.birthDate", "Constraint failed: ele-1"),
    }


def test_ref_1_local_reference_without_contained(validator: Validator) -> None:
    observation = copy.deepcopy(OBSERVATION)
    observation["subject"] = {"reference": "#p1"}
    assert [(e, m[:24]) for _, _, e, m in _issues(validator, observation)] == [
        ("Observation.subject", "Constraint failed: ref-1")
    ]
    observation["contained"] = [{"resourceType": "Patient", "id": "p1", "gender": "male"}]
    assert validator.validate(observation) == []


def test_dom_3_unreferenced_contained_resource(validator: Validator) -> None:
    patient = _patient(contained=[{"resourceType": "Organization", "id": "o", "name": "X"}])
    assert [(e, m[:24]) for _, _, e, m in _issues(validator, patient)] == [
        ("Patient", "Constraint failed: dom-3")
    ]
    patient["managingOrganization"] = {"reference": "#o"}
    assert validator.validate(patient) == []


def test_dom_6_is_a_warning(validator: Validator) -> None:
    patient = {"resourceType": "Patient", "gender": "male"}
    assert _issues(validator, patient) == [
        (
            "warning",
            "invariant",
            "Patient",
            "Constraint failed: dom-6: A resource should have narrative for robust management",
        )
    ]


def test_invariants_of_bundle_entries_and_contained_resources(validator: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": _patient(contact=[{"gender": "male"}])}],
    }
    found = [(e, m[:24]) for s, _, e, m in _issues(validator, bundle) if s == "error"]
    assert found == [("Bundle.entry[0].resource.contact[0]", "Constraint failed: pat-1")]


def test_dom_3_native_agrees_with_fhirpath(model: Model) -> None:
    engine = FhirPathEngine(model)
    expression = DOM_3.replace(".as(", ".ofType(").replace("(as(", "(ofType(")
    compiled = engine.compile(expression)
    org = {"resourceType": "Organization", "id": "o", "name": "X"}
    cases = [
        _patient(),
        _patient(contained=[org]),
        _patient(contained=[org], managingOrganization={"reference": "#o"}),
        _patient(contained=[{**org, "partOf": {"reference": "#"}}]),
        _patient(contained=[{"resourceType": "Organization", "name": "no id"}]),
        _patient(contained=[org, {**org, "id": "p"}], managingOrganization={"reference": "#o"}),
    ]
    for case in cases:
        assert contained_are_referenced(case) == compiled.evaluate(case)[0], case


@pytest.mark.parametrize(
    ("expression", "guard"),
    [
        ("contained.meta.security.empty()", {"contained"}),
        ("dataAbsentReason.empty() or value.empty()", {"dataAbsentReason"}),
        ("code.empty() or system.exists()", {"code"}),
        ("a.exists() implies b.exists()", {"a"}),
        ("a.where(b).empty() and c.empty()", {"a", "c"}),
        ("a.all(b.exists())", {"a"}),
        ("a.exists() or b.exists()", None),
        ("a.empty() and b.exists()", None),
        ("$this.a.empty()", None),
    ],
)
def test_guards(expression: str, guard: set[str] | None) -> None:
    assert _guard(parse(expression)) == guard


def test_guards_agree_with_full_evaluation(validator: Validator) -> None:
    # Every guarded invariant of Observation, Patient and Quantity evaluated with
    # and without its guard on resources that trigger and skip it.
    observation = copy.deepcopy(OBSERVATION)
    samples = [
        OBSERVATION,
        {**observation, "dataAbsentReason": {"text": "x"}},
        {**observation, "component": [{"code": observation["code"]}]},
        _patient(contained=[{"resourceType": "Organization", "id": "o"}]),
        _patient(),
    ]
    checked = 0
    for sample in samples:
        profile = validator.base_profile(sample["resourceType"])
        assert profile is not None
        node = Node(sample, validator.types.resource(sample))
        for invariant in profile.root.invariants:
            if invariant.guard is None:
                continue
            unguarded = dataclasses.replace(invariant, guard=None)
            expected = evaluate_invariant(unguarded, validator.types, node, node)
            assert evaluate_invariant(invariant, validator.types, node, node) == expected
            checked += 1
    assert checked >= 15


def test_every_core_constraint_compiles_once(validator: Validator) -> None:
    definitions = list(iter_package_resources(find_package_tarball(), {"StructureDefinition"}))
    count = 0
    for definition in definitions:
        if "snapshot" in definition and definition.get("kind") != "logical":
            compiled = validator.profile(definition["url"])
            assert compiled is not None
            count += 1
    assert count > 600
    # Compiled once per Validator: the same objects come back.
    first = validator.profile("http://hl7.org/fhir/StructureDefinition/Patient")
    assert first is validator.profile("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1")
    assert first is not None
    contact = first.by_id["Patient.contact"]
    pat_1 = next(i for i in contact.invariants if i.key == "pat-1")
    constraint = {"key": "pat-1", "expression": pat_1.expression, "severity": "error"}
    assert validator.invariants.compile(constraint, contact.focus) is pat_1


def test_evaluation_errors_are_reported_as_warnings(validator: Validator, model: Model) -> None:
    # A profile whose constraint cannot be evaluated on a patient with two names.
    base = validator.definitions.base_definition("Patient")
    assert base is not None
    profile = copy.deepcopy(base)
    profile.update(
        url="http://example.org/StructureDefinition/bad-invariant",
        derivation="constraint",
        baseDefinition=base["url"],
    )
    root = profile["snapshot"]["element"][0]
    root["constraint"] = [
        *root["constraint"],
        {
            "key": "x-1",
            "severity": "error",
            "human": "one name",
            "expression": "name.family.length() > 0",
        },
        {
            "key": "x-2",
            "severity": "warning",
            "human": "no telecom",
            "expression": "telecom.empty()",
        },
    ]
    from cmio.validation.packages import FhirPackage

    local = Validator(model, [FhirPackage("example", "1.0.0", (profile,))], core=validator.core)
    patient = _patient(
        name=[{"family": "A"}, {"family": "B"}], telecom=[{"system": "phone", "value": "1"}]
    )
    issues: list[Issue] = local.validate(patient, [profile["url"]])
    assert [(i.severity, i.code, i.message[:50]) for i in issues] == [
        ("warning", "processing", "x-1: the constraint could not be evaluated: input "),
        ("warning", "invariant", "Constraint failed: x-2: no telecom"),
    ]
