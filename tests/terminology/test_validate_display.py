"""Display checks of ``$validate-code`` across languages (:mod:`cmio.terminology.validate_display`)."""

from __future__ import annotations

import pytest

from cmio.terminology.codesystem import ResourceCodeSystem
from cmio.terminology.errors import TerminologyError
from cmio.terminology.validate_display import display_issue, parse_languages, valueset_language
from cmio.terminology.validate_types import Issue

CS = {
    "resourceType": "CodeSystem",
    "url": "http://example.org/cs",
    "language": "en",
    "content": "complete",
    "concept": [
        {"code": "a", "display": "Alpha", "designation": [{"language": "de", "value": "Alfa"}]},
        {"code": "b", "display": "Beta"},
    ],
}


def _issue(code: str, display: str, languages: str | None, lenient: bool = False) -> Issue | None:
    entry = ResourceCodeSystem(CS).get(code)
    wanted = parse_languages(languages)
    return display_issue(
        display, entry, "en", None, wanted, languages, f"cs#{code}", "Coding.display", lenient
    )


def test_language_lists_are_read_by_weight() -> None:
    assert parse_languages(None) == []
    assert parse_languages("de") == ["de"]
    assert parse_languages("en;q=0.4, de, fr;q=0.7") == ["de", "fr", "en"]
    assert parse_languages("de, *; q=0") == ["de"]  # wildcard and q=0 left out
    assert parse_languages("en_US,en;q=0.9") == ["en_US", "en"]  # as some clients send it
    with pytest.raises(TerminologyError) as error:
        parse_languages("-")
    assert error.value.status == 400
    assert error.value.detail == "invalid-display"
    assert error.value.message == "Invalid displayLanguage: '-'"


def test_valueset_language_prefers_the_expansion_parameter() -> None:
    parameter = {
        "url": "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter",
        "extension": [
            {"url": "name", "valueCode": "displayLanguage"},
            {"url": "value", "valueCode": "de"},
        ],
    }
    assert valueset_language({"language": "fr", "compose": {"extension": [parameter]}}) == "de"
    assert valueset_language({"language": "fr"}) == "fr"
    assert valueset_language(None) is None


def test_display_in_the_language_asked_for() -> None:
    assert _issue("a", "Alpha", None) is None  # no language: any display of the concept
    assert _issue("a", "alfa", None) is None  # case does not matter
    assert _issue("a", "Alfa", "de") is None
    wrong = _issue("a", "Alpha", "de")  # valid, but not in German
    assert wrong is not None and wrong.severity == "error"
    assert wrong.text == (
        "Wrong Display Name 'Alpha' for cs#a. Valid display is 'Alfa' (de) "
        "(for the language(s) 'de')"
    )
    spaced = _issue("a", "Al pha", None, lenient=True)
    assert spaced is not None and spaced.severity == "warning"
    assert "one of 2 choices: 'Alpha' (en) or 'Alfa' (de)" in spaced.text


def test_no_display_in_the_language_asked_for() -> None:
    default = _issue("b", "Beta", "de")  # only English: the default language's is information
    assert default is not None and default.severity == "information"
    assert default.text == (
        "There are no valid display names found for the code cs#b for language(s) 'de'. "
        "The display is 'Beta' which is a valid display for the default language"
    )
    wrong = _issue("b", "Gamma", "de")
    assert wrong is not None and wrong.severity == "error"
    assert wrong.text == (
        "Wrong Display Name 'Gamma' for cs#b. There are no valid display names found for "
        "language(s) 'de'. Default display is 'Beta'"
    )
