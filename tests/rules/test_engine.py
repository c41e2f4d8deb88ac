"""The rule engine alone: scope by type and source, preconditions, terminology checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from cmio.fhirpath import FhirPathEngine
from cmio.model import Model
from cmio.rules import RuleEngine, RuleError, annotate, rule_from_json
from cmio.rules.definition import version_key


class Members:
    """A value set with one member (the terminology provider protocol)."""

    def member_of(self, code: Mapping[str, Any], valueset: str) -> bool | None:
        if valueset != "http://example.org/vs":
            return None
        codings = code.get("coding", [code])  # a CodeableConcept or a Coding
        return any(
            c.get("system") == "http://loinc.org" and c.get("code") == "4548-4" for c in codings
        )


@pytest.fixture(scope="module")
def engine(model: Model) -> RuleEngine:
    return RuleEngine(FhirPathEngine(model), Members())


def _obs(code: str = "4548-4", source: str | None = None, tag: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
    }
    meta: dict[str, Any] = {}
    if source:
        meta["source"] = source
    if tag:
        system, _, value = tag.partition("|")
        meta["tag"] = [{"system": system, "code": value}]
    if meta:
        resource["meta"] = meta
    return resource


def test_source_scope(engine: RuleEngine) -> None:
    rule = rule_from_json(
        {"id": "r", "severity": "information", "message": "m", "expression": "false",
         "scope": {"sources": ["hl7v2:LAB", "http://feeds|lab"]}}
    )  # fmt: skip
    assert engine.check(rule, _obs()) is None
    assert engine.check(rule, _obs(source="hl7v2:LAB#msg1")) is not None
    assert engine.check(rule, _obs(source="hl7v2:ADT")) is None
    found = engine.check(rule, _obs(tag="http://feeds|lab"))
    assert found is not None and found.severity == "information"


def test_value_set_check_and_precondition(engine: RuleEngine) -> None:
    rule = rule_from_json(
        {"id": "vs", "severity": "error", "message": "m", "applies": "status = 'final'",
         "terminology": {"path": "code", "valueSet": "http://example.org/vs"}}
    )  # fmt: skip
    assert engine.check(rule, _obs("4548-4")) is None
    found = engine.check(rule, _obs("2345-7"))
    assert found is not None and found.path == "Observation.code"
    assert engine.check(rule, {**_obs("2345-7"), "status": "preliminary"}) is None


def test_member_of_in_expression(engine: RuleEngine) -> None:
    rule = rule_from_json(
        {"id": "m", "severity": "warning", "message": "m",
         "expression": "code.memberOf('http://example.org/vs')"}
    )  # fmt: skip
    assert engine.check(rule, _obs("4548-4")) is None
    assert engine.check(rule, _obs("1-1")) is not None


def test_evaluation_error_is_a_finding(engine: RuleEngine) -> None:
    rule = rule_from_json({"id": "e", "severity": "warning", "message": "m", "expression": "code.coding.code = 'x'"})  # fmt: skip
    two = _obs()
    two["code"]["coding"].append({"system": "s", "code": "y"})
    found = engine.check(rule, two)
    assert found is not None  # a two-item collection compared with '=' is empty: not true


@pytest.mark.parametrize(
    "data",
    [
        {"severity": "error", "message": "m", "expression": "true"},
        {"id": "x", "severity": "fatal", "message": "m", "expression": "true"},
        {"id": "x", "severity": "error", "expression": "true"},
        {"id": "x", "severity": "error", "message": "m"},
        {"id": "x", "severity": "error", "message": "m", "terminology": {"path": "code"}},
        {
            "id": "x",
            "severity": "error",
            "message": "m",
            "expression": "true",
            "scope": {"resourceTypes": "Patient"},
        },
    ],
)
def test_invalid_rules_refused(data: dict[str, Any]) -> None:
    with pytest.raises(RuleError):
        rule_from_json(data)


def test_annotate_replaces_only_rule_tags() -> None:
    resource = _obs(tag="http://other|keep")
    annotate(resource, [])
    assert resource["meta"]["tag"] == [{"system": "http://other", "code": "keep"}]


def test_version_order() -> None:
    assert version_key("1.10.0") > version_key("1.9.2") > version_key("1.9.2-beta")
