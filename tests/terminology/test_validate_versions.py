"""$validate-code picks the code system version: the coding's, else the value set's
include, else the ``system-version`` default, else the newest."""

from __future__ import annotations

from typing import Any

from cmio.terminology.expansion import ExpandOptions
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import TerminologyService
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code
from tests.terminology.test_service import CS, codesystem


def _valueset(*versions: str | None) -> dict[str, Any]:
    includes = [{"system": CS, **({"version": v} if v else {})} for v in versions]
    return {
        "resourceType": "ValueSet",
        "id": "v",
        "url": "http://example.org/vs/v",
        "status": "active",
        "compose": {"include": includes},
    }


def _version(
    vs: dict[str, Any] | None,
    coding_version: str | None = None,
    newest: str = "2.0.0",
    **options: Any,
) -> Any:
    old, new = codesystem("1.0.0"), codesystem(newest, extra=True)
    service = TerminologyService(TerminologyResources(core=lambda: [old, new]))
    request = ValidateRequest(
        [CodingInput(CS, "head", coding_version)], vs, options=ExpandOptions(**options)
    )
    answer = validate_code(service, request)
    return {p["name"]: p.get("valueString") for p in answer["parameter"]}["version"]


def test_version_of_the_include_then_the_default_then_the_newest() -> None:
    assert _version(_valueset(None)) == "2.0.0"  # nothing said: the newest
    assert _version(_valueset("1.0.0")) == "1.0.0"  # the value set's include
    assert _version(_valueset(None), system_versions={CS: "1.0.0"}) == "1.0.0"  # the default
    assert _version(_valueset("1.0.0"), system_versions={CS: "2.0.0"}) == "1.0.0"
    assert _version(_valueset("1.0.0", "2.0.0")) == "2.0.0"  # includes disagree: the newest
    assert _version(None, "1.0.0") == "1.0.0"  # CodeSystem $validate-code: the coding's own
    assert _version(None) == "2.0.0"


def test_version_patterns() -> None:
    from cmio.terminology.resources import version_matches

    for wanted, actual in (
        ("1.x", "1.2.0"),
        ("1.x.x", "1.2.0"),
        ("1.0.x", "1.0.0"),
        ("1.*", "1.5"),
    ):
        assert version_matches(wanted, actual), (wanted, actual)
    for wanted, actual in (("1.0.x", "1.2.0"), ("1", "1.0.0"), ("1.x", "2.0.0"), ("1.x.x", "1.2")):
        assert not version_matches(wanted, actual), (wanted, actual)
    assert _version(_valueset("1.x")) == "1.0.0"
    assert _version(_valueset("2.x")) == "2.0.0"
    assert _version(_valueset("1.0.x")) == "1.0.0"  # a wildcard include picks its match


def _expand(vs: dict[str, Any], **options: Any) -> dict[str, Any]:
    from cmio.terminology.service import ExpandRequest

    old, new = codesystem("1.0.0"), codesystem("2.0.0", extra=True)
    service = TerminologyService(TerminologyResources(core=lambda: [old, new]))
    expansion: dict[str, Any] = service.expand(
        ExpandRequest(valueset=vs, options=ExpandOptions(**options))
    )["expansion"]
    return expansion


def test_expansion_version_defaults_and_checks() -> None:
    import pytest

    from cmio.terminology.errors import TerminologyError

    applied = _expand(_valueset(None), system_versions={CS: "1.0.0"})["parameter"]
    assert applied == [
        {"name": "system-version", "valueUri": f"{CS}|1.0.0"},  # it chose the version: echoed
        {"name": "used-codesystem", "valueUri": f"{CS}|1.0.0"},
    ]
    pinned = _expand(_valueset("2.0.0"), system_versions={CS: "1.0.0"})["parameter"]
    assert pinned == [{"name": "used-codesystem", "valueUri": f"{CS}|2.0.0"}]  # not used
    assert _expand(_valueset("1.0.0"), check_versions={CS: "1.0.x"})["total"] == 7
    # a versionless include takes the newest version the check allows
    chosen = _expand(_valueset(None), check_versions={CS: "1.0.x"})["parameter"]
    assert chosen == [
        {"name": "check-system-version", "valueUri": f"{CS}|1.0.x"},  # it chose: echoed
        {"name": "used-codesystem", "valueUri": f"{CS}|1.0.0"},
    ]
    with pytest.raises(TerminologyError) as error:  # a pinned one that fails the check
        _expand(_valueset("2.0.0"), check_versions={CS: "1.0.x"})
    assert error.value.detail == "version-error"
    assert error.value.message == (
        f"The version '2.0.0' is not allowed for system '{CS}': required to be '1.0.x' "
        "by a version-check parameter"
    )


def test_a_coding_version_within_the_include_pattern_is_used() -> None:
    assert _version(_valueset("1.x"), "1.0.0", newest="1.2.0") == "1.0.0"
    assert _version(_valueset("1.x"), None, newest="1.2.0") == "1.2.0"


def _answer(
    vs: dict[str, Any] | None,
    coding_version: str | None,
    kind: str = "Coding",
    newest: str = "2.0.0",
    **options: Any,
) -> Any:
    old, new = codesystem("1.0.0"), codesystem(newest, extra=True)
    service = TerminologyService(TerminologyResources(core=lambda: [old, new]))
    coding = CodingInput(CS, "head", coding_version)
    concept = {"coding": [{"system": CS, "version": coding_version, "code": "head"}]}
    request = ValidateRequest(
        [coding],
        vs,
        kind=kind,
        codeable_concept=concept if kind != "Coding" else None,
        options=ExpandOptions(**options),
    )
    answer = validate_code(service, request)
    params = {p["name"]: p for p in answer["parameter"]}
    issues = (
        [
            (i["severity"], i["details"]["coding"][0]["code"], i["details"]["text"])
            for i in params["issues"]["resource"]["issue"]
        ]
        if "issues" in params
        else []
    )
    return params, sorted(issues)


def test_an_unknown_version_of_a_known_system() -> None:
    """The system is known, the version is not: ``x-caused-by-unknown-system`` with the
    version, the versions that exist, and no "not in the value set" (it cannot be decided)."""
    params, issues = _answer(_valueset("1.5.0"), None)
    assert params["result"]["valueBoolean"] is False
    assert params["x-caused-by-unknown-system"]["valueCanonical"] == f"{CS}|1.5.0"
    assert "x-unknown-system" not in params
    assert issues == [
        (
            "error",
            "not-found",
            f"A definition for CodeSystem '{CS}' version '1.5.0' could not be found, so the code "
            "cannot be validated. Valid versions: 1.0.0 or 2.0.0",
        )
    ]


def test_a_coding_version_that_does_not_exist() -> None:
    """Pinned include: the mismatch is an error; versionless include (the newest taken): the
    mismatch is only a warning, the unknown version is the error. Either way the code is
    reported as that coding's result, also inside a CodeableConcept."""
    mismatch = f"The code system '{CS}' version '1.0.0' in the ValueSet include is different"
    for kind in ("Coding", "CodeableConcept"):
        params, issues = _answer(_valueset("1.0.0"), "9.9.9", kind)
        assert [i[:2] for i in issues] == [("error", "not-found"), ("error", "vs-invalid")]
        assert issues[1][2].startswith(mismatch)
        assert params["x-caused-by-unknown-system"]["valueCanonical"] == f"{CS}|9.9.9"
        assert params["code"]["valueCode"] == "head"
        assert params["result"]["valueBoolean"] is False
    params, issues = _answer(_valueset(None), "9.9.9")
    assert [i[:2] for i in issues] == [("error", "not-found"), ("warning", "vs-invalid")]
    assert "version '2.0.0' for the versionless include in the ValueSet include" in issues[1][2]


def test_not_in_the_value_set_names_the_display_given() -> None:
    source = codesystem("1.0.0")
    service = TerminologyService(TerminologyResources(core=lambda: [source]))
    arms = {"include": [{"system": CS, "concept": [{"code": "arm"}]}]}
    other = {**_valueset("1.0.0"), "compose": arms}
    answer = validate_code(service, ValidateRequest([CodingInput(CS, "head", None, "Head")], other))
    issue = next(p for p in answer["parameter"] if p["name"] == "issues")["resource"]["issue"][0][
        "details"
    ]["text"]
    assert issue.startswith(
        f"The provided code '{CS}#head ('Head')' was not found in the value set"
    )


def test_expand_property_and_include_definition() -> None:
    """``property`` (R5 $expand) returns the requested concept properties as R4 cross-version
    extensions, declared once on the expansion; ``includeDefinition`` keeps the value set's
    definition (its compose), as R4 defines it."""
    from cmio.terminology.render import CONTAINS_PROPERTY, EXPANSION_PROPERTY
    from cmio.terminology.service import ExpandRequest

    source = codesystem("1.0.0")
    source["property"][0]["uri"] = "http://example.org/props#kind"
    source["concept"][1]["definition"] = "The top end"  # head
    service = TerminologyService(TerminologyResources(core=lambda: [source]))
    vs = _valueset("1.0.0")
    out = service.expand(ExpandRequest(valueset=vs, properties=["kind", "definition"]))
    assert "compose" not in out
    declared = [
        {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]}
        for e in out["expansion"]["extension"]
        if e["url"] == EXPANSION_PROPERTY
    ]
    assert declared == [
        {"code": "kind", "uri": "http://example.org/props#kind"},
        {"code": "definition", "uri": "http://hl7.org/fhir/concept-properties#definition"},
    ]
    rows = {c["code"]: c for c in out["expansion"]["contains"]}
    head = [
        [next(v for k, v in p.items() if k.startswith("value")) for p in e["extension"]]
        for e in rows["head"]["extension"]
        if e["url"] == CONTAINS_PROPERTY
    ]
    assert head == [["kind", "axial"], ["definition", "The top end"]]
    assert "extension" not in rows["tail"]  # no property asked for that it has
    defined = service.expand(ExpandRequest(valueset=vs, include_definition=True))
    assert defined["compose"] == vs["compose"]


def test_an_unknown_system_the_value_set_uses_or_only_the_value() -> None:
    """A system the value set's include names is what keeps it from being evaluated
    (``x-caused-by-unknown-system``); a system only the value names is ``x-unknown-system``."""
    source = codesystem("1.0.0")
    service = TerminologyService(TerminologyResources(core=lambda: [source]))
    missing = "http://example.org/missing"
    uses = {**_valueset("1.0.0"), "url": "http://example.org/vs/uses"}
    uses["compose"] = {"include": [{"system": missing}]}
    for vs, name, shown in (
        (uses, "x-caused-by-unknown-system", f"'{missing}'"),
        (_valueset("1.0.0"), "x-unknown-system", missing),
    ):
        answer = validate_code(service, ValidateRequest([CodingInput(missing, "a", None)], vs))
        params = {p["name"]: p for p in answer["parameter"]}
        assert params[name]["valueCanonical"] == missing
        assert params["message"]["valueString"].startswith(
            f"A definition for CodeSystem {shown} could not be found, so the code cannot be"
        )


def test_a_coding_whose_system_is_a_value_set() -> None:
    source = codesystem("1.0.0")
    vs = _valueset("1.0.0")
    service = TerminologyService(TerminologyResources(core=lambda: [source, vs]))
    answer = validate_code(service, ValidateRequest([CodingInput(vs["url"], "head", None)], vs))
    params = {p["name"]: p for p in answer["parameter"]}
    assert "x-unknown-system" not in params and params["result"]["valueBoolean"] is False
    issues = params["issues"]["resource"]["issue"]
    assert issues[0]["details"]["text"] == (
        f"The Coding references a value set, not a code system ('{vs['url']}')"
    )
    assert (issues[0]["code"], issues[0]["expression"]) == ("invalid", ["Coding.system"])


def test_check_system_version_rules() -> None:
    """``check-system-version``: a versionless include takes the newest version it allows;
    a coding whose version is within the include's pattern is checked as that version; a
    pinned include that fails the check is an error at the coding's version."""
    assert _version(_valueset(None), check_versions={CS: "1.0.x"}) == "1.0.0"
    params, _ = _answer(_valueset("1.x"), "1.0.0", check_versions={CS: "1.0.x"}, newest="1.2.0")
    assert params["result"]["valueBoolean"] is True
    params, issues = _answer(_valueset("2.0.0"), "1.0.0", check_versions={CS: "1.0.x"})
    assert [i[:2] for i in issues] == [("error", "version-error"), ("error", "vs-invalid")]
    assert params["issues"]["resource"]["issue"][1]["expression"] == ["Coding.version"]


def test_an_unknown_include_version_beside_the_coding_version() -> None:
    """Include ``version: 1`` (no such version), coding 1.0.0: the mismatch and the unknown
    version are both errors, and a CodeableConcept gets no "No valid coding" (the value
    set cannot be evaluated)."""
    for kind in ("Coding", "CodeableConcept"):
        params, issues = _answer(_valueset("1"), "1.0.0", kind)
        assert [i[:2] for i in issues] == [("error", "not-found"), ("error", "vs-invalid")]
        assert params["x-caused-by-unknown-system"]["valueCanonical"] == f"{CS}|1"


def test_a_default_version_mismatch_says_where_it_came_from() -> None:
    _, issues = _answer(_valueset(None), "9.9.9", system_versions={CS: "1.0.0"})
    assert [i[:2] for i in issues] == [("error", "not-found"), ("error", "vs-invalid")]
    assert "version '1.0.0' resulting from the version '' in the ValueSet include" in issues[1][2]


def test_force_system_version_against_a_stated_version() -> None:
    """``force-system-version`` replaces the include's version: a value stating another,
    unknown, version is both the mismatch ('resulting from the version ...') and the
    unknown version."""
    params, issues = _answer(_valueset("1.0.0"), "9.9.9", force_versions={CS: "1.0.x"})
    assert params["result"]["valueBoolean"] is False
    assert [i[:2] for i in issues] == [("error", "not-found"), ("error", "vs-invalid")]
    assert "version '1.0.x' resulting from the version '1.0.0' in the ValueSet" in issues[1][2]


def test_an_overloaded_value_set_takes_the_version_that_fits() -> None:
    """Includes of two versions of one system, a versionless value: the newest version
    whose display is the one given, else the newest that has the code."""
    assert _version(_valueset("1.0.0", "2.0.0")) == "2.0.0"
    enumerated = _valueset("1.0.0")
    enumerated["compose"]["include"][0]["concept"] = [{"code": "head"}]
    enumerated["compose"]["include"].append(
        {"system": CS, "version": "2.0.0", "concept": [{"code": "arm"}]}
    )
    assert _version(enumerated) == "1.0.0"  # only the 1.0.0 include has it


def test_default_valueset_version_for_a_versionless_import() -> None:
    """``default-valueset-version`` picks the version a versionless import takes (echoed);
    a version that does not exist is an error naming it."""
    import pytest

    from cmio.terminology.errors import TerminologyError
    from cmio.terminology.service import ExpandRequest

    source = codesystem("1.0.0")
    one = {**_valueset("1.0.0"), "id": "a1", "url": "http://example.org/vs/a", "version": "1"}
    one["compose"]["include"][0]["concept"] = [{"code": "head"}]
    two = {**_valueset("1.0.0"), "id": "a2", "url": "http://example.org/vs/a", "version": "2"}
    outer = {**_valueset(None), "compose": {"include": [{"valueSet": ["http://example.org/vs/a"]}]}}
    service = TerminologyService(TerminologyResources(core=lambda: [source, one, two]))

    def expand(version: str | None) -> dict[str, Any]:
        options = ExpandOptions(valueset_versions={"http://example.org/vs/a": version or ""})
        out: dict[str, Any] = service.expand(ExpandRequest(valueset=outer, options=options))
        return out["expansion"]

    assert expand("1")["total"] == 1
    assert {"name": "default-valueset-version", "valueUri": "http://example.org/vs/a|1"} in (
        expand("1")["parameter"]
    )
    assert service.expand(ExpandRequest(valueset=outer))["expansion"]["total"] > 1  # newest
    with pytest.raises(TerminologyError) as error:
        expand("3")
    assert "http://example.org/vs/a|3" in error.value.message


def test_an_overloaded_value_set_expands_each_version() -> None:
    """Includes of two versions: a code in both is two members (the newest first), one in
    the older only is still validated (its version is the one having it)."""
    members = _expand(_valueset("1.0.0", "2.0.0"))["contains"]
    heads = [m.get("version") for m in members if m["code"] == "head"]
    assert heads == ["2.0.0", "1.0.0"]
    assert _expand(_valueset("1.0.0", "2.0.0"))["total"] == len(members)
    old, new = codesystem("1.0.0", extra=True), codesystem("2.0.0")
    service = TerminologyService(TerminologyResources(core=lambda: [old, new]))
    extra = {c["code"] for c in old["concept"]} - {c["code"] for c in new["concept"]}
    for code in extra:
        request = ValidateRequest([CodingInput(CS, code)], _valueset("1.0.0", "2.0.0"))
        answer = {p["name"]: p for p in validate_code(service, request)["parameter"]}
        assert answer["result"]["valueBoolean"] is True
        assert answer["version"]["valueString"] == "1.0.0"


def test_a_stated_version_one_of_several_includes_is_no_mismatch() -> None:
    assert _version(_valueset("1.0.0", "2.0.0"), "2.0.0") == "2.0.0"
    params, issues = _answer(_valueset("1.0.0", "2.0.0"), "1.0.0")
    assert params["result"]["valueBoolean"] is True and issues == []
