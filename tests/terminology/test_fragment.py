"""Fragment code systems (``content = fragment``,
https://hl7.org/fhir/R4/codesystem-content-mode.html): a code they do not list may exist in
another fragment, so it is a warning and not a failure, and an expansion over one is
marked as not closed."""

from __future__ import annotations

from typing import Any

from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code
from tests.terminology.test_service import CS, codesystem


def _service() -> TerminologyService:
    fragment = {**codesystem("1.0.0"), "content": "fragment"}
    return TerminologyService(TerminologyResources(core=lambda: [fragment]))


def _valueset() -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "url": "http://example.org/vs/fragment",
        "status": "active",
        "compose": {"include": [{"system": CS}]},
    }


def test_an_unknown_code_of_a_fragment_is_a_warning() -> None:
    for vs in (None, _valueset()):
        answer = validate_code(_service(), ValidateRequest([CodingInput(CS, "nope")], vs))
        params = {p["name"]: p for p in answer["parameter"]}
        assert params["result"]["valueBoolean"] is True
        issues = params["issues"]["resource"]["issue"]
        assert [(i["severity"], i["details"]["coding"][0]["code"]) for i in issues] == [
            ("warning", "invalid-code")
        ]
        assert "labeled as a fragment" in issues[0]["details"]["text"]
    known = validate_code(_service(), ValidateRequest([CodingInput(CS, "arm")], _valueset()))
    assert {p["name"]: p for p in known["parameter"]}["result"]["valueBoolean"] is True


def test_an_expansion_over_a_fragment_is_marked_unclosed() -> None:
    out = _service().expand(ExpandRequest(valueset=_valueset()))["expansion"]
    assert {
        "url": "http://hl7.org/fhir/StructureDefinition/valueset-unclosed",
        "valueBoolean": True,
    } in (out["extension"])
    assert out["total"] == 7
