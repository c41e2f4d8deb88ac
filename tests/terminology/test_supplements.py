"""CodeSystem supplements: asked for by a value set's extension or ``useSupplement``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cmio.terminology.errors import TerminologyError
from cmio.terminology.lookup import lookup
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.terminology.supplements import SUPPLEMENT_EXTENSION
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code
from tests.terminology.test_service import CS, codesystem

SUP = "http://example.org/cs/body-nl"
VS = "http://example.org/vs/body-nl"


def supplement() -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "url": SUP,
        "version": "0.2",
        "status": "active",
        "content": "supplement",
        "supplements": CS,
        "property": [{"code": "weight", "type": "decimal"}],
        "concept": [
            {
                "code": "hand",
                "designation": [{"language": "nl", "value": "Hand (nl)"}],
                "property": [{"code": "weight", "valueDecimal": 1.5}],
            },
            {"code": "nope", "designation": [{"language": "nl", "value": "Niets"}]},
        ],
    }


def valueset(*extensions: str) -> dict[str, Any]:
    vs: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": "body-nl",
        "url": VS,
        "status": "active",
        "compose": {"include": [{"system": CS}]},
    }
    if extensions:
        vs["extension"] = [{"url": SUPPLEMENT_EXTENSION, "valueCanonical": e} for e in extensions]
    return vs


def _service(*resources: dict[str, Any]) -> tuple[TerminologyService, list[dict[str, Any]]]:
    base = [codesystem(), supplement(), *resources]
    kept = copy.deepcopy(base)
    return TerminologyService(TerminologyResources(core=lambda: base)), kept


def _validate(service: TerminologyService, vs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    request = ValidateRequest([CodingInput(CS, "hand", display="Hand (nl)")], vs, **kw)
    answer = validate_code(service, request)
    return {p["name"]: p.get("valueBoolean", p.get("valueString")) for p in answer["parameter"]}


def test_designations_of_a_supplement_count_only_when_it_is_used() -> None:
    service, kept = _service()
    assert _validate(service, valueset())["result"] is False  # not asked for
    assert _validate(service, valueset(SUP))["result"] is True  # the value set's extension
    used = _validate(service, valueset(), supplements=[f"{SUP}|0.2"])  # useSupplement
    assert used["result"] is True and used["display"] == "Hand"
    answer = service.expand(
        ExpandRequest(valueset=valueset(SUP), include_designations=True, count=10)
    )
    params = answer["expansion"]["parameter"]
    assert {"name": "used-supplement", "valueUri": f"{SUP}|0.2"} in params
    hand = next(c for c in answer["expansion"]["contains"] if c["code"] == "hand")
    assert {"language": "nl", "value": "Hand (nl)"} in hand["designation"]
    assert all(c["code"] != "nope" for c in answer["expansion"]["contains"])  # adds no codes
    found = lookup(service.resources, CS, "hand", supplements=[SUP])
    weights = [p for p in found["parameter"] if p["name"] == "property"]
    assert any({"name": "value", "valueDecimal": 1.5} in p["part"] for p in weights)
    assert [codesystem(), supplement()] == kept  # the resources themselves are unchanged


@pytest.mark.parametrize("missing", [f"{SUP}-x", CS])  # unknown, or not a supplement
def test_an_unknown_supplement_is_an_error(missing: str) -> None:
    service, _ = _service()
    with pytest.raises(TerminologyError) as expand_error:
        service.expand(ExpandRequest(valueset=valueset(missing)))
    assert expand_error.value.status == 404
    assert f"Required supplement not found: {missing}" in expand_error.value.message
    with pytest.raises(TerminologyError):
        _validate(service, valueset(), supplements=[missing])
    with pytest.raises(TerminologyError):
        lookup(service.resources, CS, "hand", supplements=[missing])


def test_a_supplement_is_not_a_coding_system() -> None:
    service, _ = _service()
    answer = validate_code(service, ValidateRequest([CodingInput(SUP, "hand")], None))
    params = {p["name"]: p for p in answer["parameter"]}
    assert params["result"]["valueBoolean"] is False
    issue = params["issues"]["resource"]["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "invalid-data"
    assert (
        issue["expression"] == ["Coding.system"] and "is a supplement" in issue["details"]["text"]
    )


def _designations(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            part["name"]: next(v for k, v in part.items() if k.startswith("value"))
            for part in p["part"]
        }
        for p in answer["parameter"]
        if p["name"] == "designation"
    ]


def test_lookup_names_the_supplement_of_a_designation() -> None:
    service, _ = _service()
    plain = lookup(service.resources, CS, "hand")
    assert _designations(plain) == []  # the code system states no language
    assert all(p["name"] != "used-supplement" for p in plain["parameter"])
    found = lookup(service.resources, CS, "hand", supplements=[SUP])
    assert _designations(found) == [
        {"language": "nl", "source": f"{SUP}|0.2", "value": "Hand (nl)"}
    ]
    assert {"name": "used-supplement", "valueCanonical": f"{SUP}|0.2"} in found["parameter"]


def test_lookup_gives_the_display_in_the_code_systems_language() -> None:
    english = {**codesystem(), "language": "en"}
    service = TerminologyService(TerminologyResources(core=lambda: [english]))
    preferred = {
        "system": "http://terminology.hl7.org/CodeSystem/hl7TermMaintInfra",
        "code": "preferredForLanguage",
        "display": "Preferred For Language",
    }
    assert _designations(lookup(service.resources, CS, "head")) == [
        {"language": "de", "value": "Kopf"},
        {"language": "en", "use": preferred, "value": "Head"},
    ]
