"""Concept properties stated by extension on expansion rows (label, order, weight, status),
and the concept's rendering extensions (:mod:`cmio.terminology.render`)."""

from __future__ import annotations

from typing import Any

from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.terminology.supplements import SUPPLEMENT_EXTENSION

SD = "http://hl7.org/fhir/StructureDefinition/"
CS = "http://example.org/cs/ordered"
SUPPLEMENT = "http://example.org/cs/ordered-supplement"
EXPANSION_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.property"
)
CONTAINS_PROPERTY = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ValueSet.expansion.contains.property"
)
STYLE = {"url": SD + "rendering-style", "valueString": "font-weight: bold"}


def _ext(name: str, key: str, value: Any) -> dict[str, Any]:
    return {"url": SD + name, key: value}


def _resources() -> list[dict[str, Any]]:
    cs = {
        "resourceType": "CodeSystem",
        "url": CS,
        "status": "active",
        "content": "complete",
        "concept": [
            {
                "code": "x",
                "display": "X",
                "extension": [_ext("codesystem-conceptOrder", "valueInteger", 2)],
            },
            {
                "code": "y",
                "display": "Y",
                "extension": [
                    _ext("codesystem-conceptOrder", "valueInteger", 1),
                    _ext("structuredefinition-standards-status", "valueCode", "deprecated"),
                    STYLE,
                ],
            },
            {"code": "z", "display": "Z"},
        ],
    }
    supplement = {
        "resourceType": "CodeSystem",
        "url": SUPPLEMENT,
        "version": "1",
        "status": "active",
        "content": "supplement",
        "supplements": CS,
        "concept": [
            {
                "code": "x",
                "extension": [
                    _ext("itemWeight", "valueDecimal", 1.5),
                    _ext("codesystem-label", "valueString", "a)"),
                ],
            }
        ],
    }
    plain = {"resourceType": "ValueSet", "url": "http://example.org/vs/plain", "status": "active"}
    plain["compose"] = {"include": [{"system": CS}]}
    with_supplement = {
        **plain,
        "url": "http://example.org/vs/supplemented",
        "extension": [{"url": SUPPLEMENT_EXTENSION, "valueCanonical": SUPPLEMENT}],
    }
    enumerated = {
        **with_supplement,
        "url": "http://example.org/vs/enumerated",
        "compose": {
            "include": [
                {
                    "system": CS,
                    "concept": [
                        {
                            "code": "x",
                            "extension": [
                                _ext("valueset-label", "valueString", "i."),
                                _ext("valueset-conceptOrder", "valueInteger", 7),
                                _ext("valueset-concept-definition", "valueString", "Ours"),
                            ],
                        },
                        {"code": "z"},
                    ],
                }
            ]
        },
    }
    return [cs, supplement, plain, with_supplement, enumerated]


def _expand(url: str, **kw: Any) -> tuple[list[str], dict[str, Any]]:
    resources = _resources()
    service = TerminologyService(TerminologyResources(core=lambda: resources))
    expansion = service.expand(ExpandRequest(url=url, **kw))["expansion"]
    declared = [
        next(p["valueCode"] for p in e["extension"] if p["url"] == "code")
        for e in expansion.get("extension") or ()
        if e["url"] == EXPANSION_PROPERTY
    ]
    rows = {}
    for row in expansion["contains"]:
        props = {}
        others = []
        for e in row.get("extension") or ():
            if e["url"] == CONTAINS_PROPERTY:
                parts = {p["url"]: p for p in e["extension"]}
                value = parts["value"]
                props[parts["code"]["valueCode"]] = next(v for k, v in value.items() if k != "url")
            else:
                others.append(e)
        rows[row["code"]] = (props, others)
    return declared, rows


def test_properties_stated_by_the_code_system() -> None:
    declared, rows = _expand("http://example.org/vs/plain")
    assert sorted(declared) == ["order", "status"]
    assert rows == {
        "x": ({"order": 2}, []),
        "y": ({"order": 1, "status": "deprecated"}, [STYLE]),
        "z": ({}, []),
    }


def test_a_supplement_adds_label_and_weight() -> None:
    declared, rows = _expand("http://example.org/vs/supplemented")
    assert sorted(declared) == ["label", "order", "status", "weight"]
    assert rows["x"] == ({"order": 2, "weight": 1.5, "label": "a)"}, [])


def test_the_value_set_states_its_own_label_and_order() -> None:
    declared, rows = _expand("http://example.org/vs/enumerated")
    assert sorted(declared) == ["label", "order", "weight"]
    definition = _ext("valueset-concept-definition", "valueString", "Ours")
    assert rows == {"x": ({"label": "i.", "order": 7, "weight": 1.5}, [definition]), "z": ({}, [])}


def test_a_requested_property_stated_by_extension_is_shown() -> None:
    _, rows = _expand("http://example.org/vs/plain", properties=["status"])
    assert rows["y"][0] == {"order": 1, "status": "deprecated"}
