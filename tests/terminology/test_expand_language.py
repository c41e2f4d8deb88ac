"""The display language of an expansion: the request's, else the value set's own
``valueset-expansion-parameter``, else its ``language``; echoed in name order."""

from __future__ import annotations

from typing import Any

from cmio.terminology.expansion import ExpandOptions
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from tests.terminology.test_service import CS, codesystem

PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"


def _expand(language: str | None = None, **vs_extra: Any) -> dict[str, Any]:
    compose: dict[str, Any] = {"include": [{"system": CS, "concept": [{"code": "head"}]}]}
    if "parameter" in vs_extra:
        name, value = vs_extra.pop("parameter")
        compose["extension"] = [
            {
                "url": PARAMETER,
                "extension": [
                    {"url": "name", "valueCode": name},
                    {"url": "value", "valueCode": value},
                ],
            }
        ]
    vs = {"resourceType": "ValueSet", "status": "active", "compose": compose, **vs_extra}
    service = TerminologyService(TerminologyResources(core=lambda: [codesystem()]))
    request = ExpandRequest(
        valueset=vs,
        options=ExpandOptions(display_language=language),
        echo=[("excludeNested", "valueBoolean", True)],
    )
    expansion: dict[str, Any] = service.expand(request)["expansion"]
    return expansion


def test_display_language_sources() -> None:
    plain = _expand()
    assert plain["contains"][0]["display"] == "Head"
    assert [p["name"] for p in plain["parameter"]] == ["excludeNested", "used-codesystem"]
    for expansion in (_expand(parameter=("displayLanguage", "de")), _expand(language="de")):
        assert expansion["contains"][0]["display"] == "Kopf"
    echoed = _expand(parameter=("displayLanguage", "de"))["parameter"]
    assert echoed[:2] == [
        {"name": "displayLanguage", "valueCode": "de"},  # sorted before excludeNested
        {"name": "excludeNested", "valueBoolean": True},
    ]
    assert (
        _expand(language="en", parameter=("displayLanguage", "de"))["contains"][0]["display"]
        == "Head"
    )  # the request wins
    own = _expand(parameter=("other", "x"))
    assert own["contains"][0]["display"] == "Head"  # another parameter: no language


def test_designation_tokens_choose_the_designations_shown() -> None:
    cs = codesystem()
    cs["concept"][1]["designation"] += [
        {"language": "de-CH", "value": "Chopf"},
        {
            "use": {"system": "http://snomed.info/sct", "code": "900000000000013009"},
            "value": "Pate",
        },
    ]
    service = TerminologyService(TerminologyResources(core=lambda: [cs]))
    vs = {
        "resourceType": "ValueSet",
        "status": "active",
        "compose": {"include": [{"system": CS, "concept": [{"code": "head"}]}]},
    }

    def shown(*tokens: str) -> list[str]:
        request = ExpandRequest(valueset=vs, include_designations=True, designations=list(tokens))
        row = service.expand(request)["expansion"]["contains"][0]
        return [d["value"] for d in row.get("designation", [])]

    assert shown() == ["Kopf", "Chopf", "Pate"]
    assert shown("urn:ietf:bcp:47|de") == ["Kopf"]  # exactly that language
    assert shown("urn:ietf:bcp:47|de-CH", "http://snomed.info/sct|900000000000013009") == [
        "Chopf",
        "Pate",
    ]
    assert shown("urn:ietf:bcp:47|es") == []


def test_the_code_systems_own_language_keeps_its_display() -> None:
    def shown(cs_language: str | None) -> str:
        cs = codesystem()
        cs["concept"][1]["designation"] = [{"language": "en", "value": "Alternate head"}]
        if cs_language:
            cs["language"] = cs_language
        service = TerminologyService(TerminologyResources(core=lambda: [cs]))
        vs = {
            "resourceType": "ValueSet",
            "status": "active",
            "compose": {"include": [{"system": CS, "concept": [{"code": "head"}]}]},
        }
        request = ExpandRequest(valueset=vs, options=ExpandOptions(display_language="en"))
        display: str = service.expand(request)["expansion"]["contains"][0]["display"]
        return display

    assert shown("en") == "Head"  # asked for the code system's own language
    assert shown(None) == "Alternate head"  # language unknown: the English designation


def test_a_display_taken_from_a_designation_leaves_the_original_as_one() -> None:
    cs = {**codesystem(), "language": "en"}
    service = TerminologyService(TerminologyResources(core=lambda: [cs]))
    vs = {
        "resourceType": "ValueSet",
        "status": "active",
        "compose": {"include": [{"system": CS, "concept": [{"code": "head"}]}]},
    }
    request = ExpandRequest(
        valueset=vs, include_designations=True, options=ExpandOptions(display_language="de")
    )
    row = service.expand(request)["expansion"]["contains"][0]
    assert row["display"] == "Kopf"
    assert [(d["language"], d["value"]) for d in row["designation"]] == [("en", "Head")]
    assert row["designation"][0]["use"]["code"] == "preferredForLanguage"
