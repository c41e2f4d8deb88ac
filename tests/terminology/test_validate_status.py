"""Status issues of ``$validate-code`` (:mod:`cmio.terminology.validate_status`)."""

from __future__ import annotations

from cmio.terminology.codesystem import ResourceCodeSystem
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import TerminologyService
from cmio.terminology.validate_status import (
    case_issue,
    deprecated_in_valueset,
    excludes_inactive,
    inactive_issue,
    not_active_issue,
    reference_issues,
)
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code

CS = ResourceCodeSystem(
    {
        "resourceType": "CodeSystem",
        "url": "http://example.org/cs",
        "caseSensitive": False,
        "property": [
            {
                "code": "not-selectable",
                "uri": "http://hl7.org/fhir/concept-properties#notSelectable",
                "type": "boolean",
            }
        ],
        "concept": [
            {"code": "old", "property": [{"code": "inactive", "valueBoolean": True}]},
            {"code": "gone", "property": [{"code": "status", "valueCode": "retired"}]},
            {"code": "group", "property": [{"code": "not-selectable", "valueBoolean": True}]},
        ],
    }
)


def test_inactive_concepts() -> None:
    old, gone = CS.get("old"), CS.get("gone")
    assert old is not None and gone is not None and old.inactive and gone.inactive
    warning = inactive_issue(old, "Coding")
    assert (warning.severity, warning.code, warning.detail, warning.path) == (
        "warning",
        "business-rule",
        "code-comment",
        "Coding",
    )
    assert (
        warning.text == "The concept 'old' has a status of inactive and its use should be reviewed"
    )
    assert "a status of retired and inactive" in inactive_issue(gone, "Coding").text
    error = not_active_issue(old, "Coding.code")
    assert (error.severity, error.detail) == ("error", "code-rule")
    assert error.text == "The concept 'old' is valid but is not active"
    assert excludes_inactive({"compose": {"inactive": False}}, False)
    assert excludes_inactive(None, True)
    assert not excludes_inactive({"compose": {}}, False)


def test_a_standard_property_under_another_code() -> None:
    group = CS.get("group")
    assert group is not None and group.abstract  # not-selectable with the notSelectable URI


def test_case_folded_code_is_information_left_out_of_the_message() -> None:
    entry = CS.get("OLD")
    assert entry is not None and entry.code == "old"
    issue = case_issue("OLD", entry, "http://example.org/cs", "Coding.code")
    assert (issue.severity, issue.detail, issue.quiet) == ("information", "code-rule", True)
    assert issue.text.startswith("The code 'OLD' differs from the correct code 'old' by case.")


def test_value_set_deprecation_marks_and_references() -> None:
    mark = {
        "url": "http://hl7.org/fhir/StructureDefinition/valueset-deprecated",
        "valueCode": "true",
    }
    valueset = {
        "compose": {
            "include": [
                {
                    "system": "http://example.org/cs",
                    "concept": [{"code": "old", "extension": [mark]}, {"code": "gone"}],
                }
            ]
        }
    }
    flagged = deprecated_in_valueset(
        valueset, "http://example.org/cs", "old", "vs|1", "Coding.code"
    )
    assert flagged is not None and flagged.severity == "warning" and flagged.quiet
    assert "in the value set vs|1 is marked with a status of deprecated" in flagged.text
    assert deprecated_in_valueset(valueset, "http://example.org/cs", "gone", "vs|1", "x") is None
    used = [
        ("used-codesystem", "http://example.org/cs|1"),
        ("used-valueset", "http://example.org/vs|2"),
    ]
    warnings = [
        {"name": "warning-draft", "valueUri": "http://example.org/cs|1"},
        {"name": "warning-withdrawn", "valueUri": "http://example.org/vs|2"},
    ]
    texts = [i.text for i in reference_issues(warnings, used)]
    assert texts == [
        "Reference to draft CodeSystem http://example.org/cs|1",
        "Reference to withdrawn ValueSet http://example.org/vs|2",
    ]


def test_deprecated_concept_and_retired_designation() -> None:
    """A concept whose standards status is deprecated is valid with a warning and its
    ``status``; a display that is a designation marked withdrawn is valid with a quiet
    ``display-comment`` warning naming the current display."""
    status = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"
    url = "http://example.org/cs/marks"
    cs = {
        "resourceType": "CodeSystem",
        "url": url,
        "status": "active",
        "content": "complete",
        "concept": [
            {
                "code": "a",
                "display": "Alpha",
                "extension": [{"url": status, "valueCode": "deprecated"}],
            },
            {
                "code": "b",
                "display": "Beta",
                "designation": [
                    {"value": "Old Beta", "extension": [{"url": status, "valueCode": "withdrawn"}]},
                    {"value": "Beta too"},
                ],
            },
        ],
    }
    service = TerminologyService(TerminologyResources(core=lambda: [cs]))
    assert ResourceCodeSystem(cs).get("a") is not None

    def check(code: str, display: str | None = None) -> dict[str, object]:
        request = ValidateRequest([CodingInput(url, code, display=display, path="code")], None)
        answer = validate_code(service, request)
        return {
            p["name"]: p.get("valueCode", p.get("valueString", p.get("valueBoolean")))
            for p in answer["parameter"]
            if "resource" not in p
        } | {
            "issues": [
                (i["severity"], i["details"]["coding"][0]["code"], i["details"]["text"])
                for p in answer["parameter"]
                if p["name"] == "issues"
                for i in p["resource"]["issue"]
            ]
        }

    deprecated = check("a")
    assert deprecated["result"] is True and deprecated["status"] == "deprecated"
    text = "The concept 'a' is deprecated and its use should be reviewed"
    assert deprecated["issues"] == [("warning", "code-comment", text)]
    assert deprecated["message"] == text
    retired = check("b", "Old Beta")
    assert retired["result"] is True and "message" not in retired and "status" not in retired
    assert retired["issues"] == [
        (
            "warning",
            "display-comment",
            "'Old Beta' is no longer considered a correct display for code 'b' "
            '(status = deprecated). The correct display is one of "Beta".',
        )
    ]
    assert check("b", "Beta too")["issues"] == []  # a current designation
    assert check("b", "Gamma")["result"] is False
