"""The terminology service in process: expansion, validation, lookup, subsumption, translation."""

from __future__ import annotations

from typing import Any

import pytest

from cmio.terminology.errors import TerminologyError
from cmio.terminology.expansion import ExpandOptions
from cmio.terminology.lookup import lookup, subsumes, translate
from cmio.terminology.providers import ServiceTerminology
from cmio.terminology.resources import TerminologyResources, version_key
from cmio.terminology.service import ExpandRequest, TerminologyService, implicit_valueset
from cmio.terminology.validatecode import CodingInput, ValidateRequest, validate_code

CS = "http://example.org/cs/body"


def _concept(code: str, display: str, *children: dict[str, Any], **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "display": display}
    if props:
        out["property"] = [
            {"code": k, ("valueBoolean" if isinstance(v, bool) else "valueCode"): v}
            for k, v in props.items()
        ]
    if children:
        out["concept"] = list(children)
    return out


def codesystem(version: str = "1.0.0", extra: bool = False) -> dict[str, Any]:
    concepts = [
        _concept(
            "limb",
            "Limb",
            _concept("arm", "Arm", _concept("hand", "Hand", kind="distal"), kind="proximal"),
            _concept("leg", "Leg", _concept("foot", "Foot", kind="distal")),
            notSelectable=True,
        ),
        _concept("head", "Head", kind="axial"),
        _concept("tail", "Tail", status="retired"),
    ]
    concepts[1]["designation"] = [{"language": "de", "value": "Kopf"}]
    if extra:
        concepts.append(_concept("neck", "Neck"))
    return {
        "resourceType": "CodeSystem",
        "url": CS,
        "version": version,
        "name": "Body",
        "status": "active",
        "content": "complete",
        "caseSensitive": True,
        "property": [{"code": "kind", "type": "code"}, {"code": "status", "type": "code"}],
        "concept": concepts,
    }


def valueset(url: str, compose: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "url": url,
        "version": version,
        "status": "active",
        "compose": compose,
    }


@pytest.fixture()
def service() -> TerminologyService:
    return TerminologyService(TerminologyResources(), max_expansion=6)


def codes(
    service: TerminologyService, res: TerminologyResources, vs: dict[str, Any], **kw: Any
) -> list[str]:
    out = service.expand(ExpandRequest(valueset=vs, **kw), res)
    return [c["code"] for c in out["expansion"].get("contains", ())]


def overlay(service: TerminologyService, *extra: dict[str, Any]) -> TerminologyResources:
    return service.resources.with_overlay([codesystem(), *extra])


@pytest.mark.parametrize(
    ("op", "value", "prop", "expected"),
    [
        ("is-a", "arm", "concept", ["arm", "hand"]),
        ("descendent-of", "limb", "concept", ["arm", "hand", "leg", "foot"]),
        ("is-not-a", "limb", "concept", ["head", "tail"]),
        ("generalizes", "hand", "concept", ["limb", "arm", "hand"]),
        ("child-of", "limb", "concept", ["arm", "leg"]),
        ("regex", "h.*", "concept", ["hand", "head"]),
        ("in", "head,tail,nope", "concept", ["head", "tail"]),
        ("=", "distal", "kind", ["hand", "foot"]),
        ("in", "axial,proximal", "kind", ["arm", "head"]),
        ("not-in", "distal", "kind", ["limb", "arm", "leg", "head", "tail"]),
        ("exists", "true", "kind", ["arm", "hand", "foot", "head"]),
        ("regex", "prox.*", "kind", ["arm"]),
        ("=", "limb", "parent", ["arm", "leg"]),
    ],
)
def test_filters(
    service: TerminologyService, op: str, value: str, prop: str, expected: list[str]
) -> None:
    vs = valueset(
        "http://example.org/vs/f",
        {"include": [{"system": CS, "filter": [{"property": prop, "op": op, "value": value}]}]},
    )
    assert codes(service, overlay(service), vs) == expected


def test_include_exclude_import_and_flags(service: TerminologyService) -> None:
    limbs = valueset(
        "http://example.org/vs/limbs",
        {
            "include": [
                {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "limb"}]}
            ]
        },
    )
    vs = valueset(
        "http://example.org/vs/v",
        {
            "include": [
                {"valueSet": ["http://example.org/vs/limbs"]},
                {
                    "system": CS,
                    "concept": [{"code": "head", "display": "The head"}, {"code": "nope"}],
                },
            ],
            "exclude": [{"system": CS, "concept": [{"code": "leg"}]}],
        },
    )
    res = overlay(service, limbs)
    out = service.expand(ExpandRequest(valueset=vs), res)
    contains = out["expansion"]["contains"]
    assert [c["code"] for c in contains] == ["limb", "arm", "hand", "foot", "head"]
    assert contains[0]["abstract"] is True
    assert contains[-1]["display"] == "The head"  # the compose's display wins
    used = {p["valueUri"] for p in out["expansion"]["parameter"]}
    assert used == {f"{CS}|1.0.0", "http://example.org/vs/limbs|1"}


def test_active_only_paging_text_and_no_silent_cap(service: TerminologyService) -> None:
    res = overlay(service)
    everything = valueset("http://example.org/vs/all", {"include": [{"system": CS}]})
    with pytest.raises(TerminologyError) as caught:  # 7 codes > max_expansion 6
        service.expand(ExpandRequest(valueset=everything), res)
    assert caught.value.code == "too-costly" and caught.value.status == 422
    page = service.expand(ExpandRequest(valueset=everything, offset=2, count=3), res)
    assert page["expansion"]["total"] == 7 and page["expansion"]["offset"] == 2
    assert [c["code"] for c in page["expansion"]["contains"]] == ["hand", "leg", "foot"]
    active = codes(service, res, everything, options=ExpandOptions(active_only=True))
    assert "tail" not in active and len(active) == 6
    assert codes(service, res, everything, filter="fo") == ["foot"]


def test_designations_and_display_language(service: TerminologyService) -> None:
    res = overlay(service)
    vs = valueset(
        "http://example.org/vs/h", {"include": [{"system": CS, "concept": [{"code": "head"}]}]}
    )
    out = service.expand(
        ExpandRequest(
            valueset=vs, include_designations=True, options=ExpandOptions(display_language="de")
        ),
        res,
    )
    item = out["expansion"]["contains"][0]
    assert item["display"] == "Kopf" and item["designation"] == [
        {"language": "de", "value": "Kopf"}
    ]


def test_versions_side_by_side_and_pinning(service: TerminologyService) -> None:
    res = service.resources.with_overlay([codesystem("1.0.0"), codesystem("2.0.0", extra=True)])
    everything = valueset("http://example.org/vs/all", {"include": [{"system": CS}]})
    assert "neck" in codes(service, res, everything, count=20)  # newest by default
    pinned = ExpandOptions(force_versions={CS: "1.0.0"})
    assert "neck" not in codes(service, res, everything, count=20, options=pinned)
    old = valueset("http://example.org/vs/old", {"include": [{"system": CS, "version": "1.0.0"}]})
    assert "neck" not in codes(service, res, old, count=20)
    default = ExpandOptions(system_versions={CS: "1.0.0"})
    assert "neck" not in codes(service, res, everything, count=20, options=default)
    with pytest.raises(TerminologyError, match=r"Valid versions: 1\.0\.0 or 2\.0\.0"):
        codes(service, res, valueset("http://x/vs", {"include": [{"system": CS, "version": "9"}]}))
    assert version_key("1.10.0") > version_key("1.9.2") > version_key(None)


def test_unknown_references_are_errors(service: TerminologyService) -> None:
    res = overlay(service)
    with pytest.raises(TerminologyError) as caught:
        codes(service, res, valueset("http://x/vs", {"include": [{"valueSet": ["http://nope"]}]}))
    assert caught.value.status == 404
    with pytest.raises(TerminologyError) as caught:
        codes(service, res, valueset("http://x/vs", {"include": [{"system": "http://nope"}]}))
    assert caught.value.detail == "not-found"
    bad = {
        "include": [
            {"system": CS, "filter": [{"property": "concept", "op": "regex", "value": "("}]}
        ]
    }
    with pytest.raises(TerminologyError, match="regex"):
        codes(service, res, valueset("http://x/vs", bad))
    with pytest.raises(TerminologyError):
        service.find_valueset("http://example.org/vs/missing")


def test_implicit_valuesets() -> None:
    isa = implicit_valueset("http://snomed.info/sct?fhir_vs=isa/73211009")
    assert isa is not None
    assert isa["compose"]["include"][0]["filter"][0] == {
        "property": "concept",
        "op": "is-a",
        "value": "73211009",
    }
    assert implicit_valueset(f"{CS}?fhir_vs") is not None
    assert implicit_valueset("http://loinc.org/vs/LP12345-6") is not None
    assert implicit_valueset("http://example.org/plain") is None


def _validate(
    service: TerminologyService,
    res: TerminologyResources,
    vs: dict[str, Any] | None,
    *codings: CodingInput,
    **kw: Any,
) -> dict[str, Any]:
    kind = kw.pop("kind", "Coding")
    answer = validate_code(service, ValidateRequest(list(codings), vs, kind, **kw), res)
    return {
        p["name"]: p.get(
            "valueBoolean", p.get("valueString", p.get("valueCanonical", p.get("resource")))
        )
        for p in answer["parameter"]
    }


def test_validate_code(service: TerminologyService) -> None:
    res = overlay(service)
    vs = valueset(
        "http://example.org/vs/arm",
        {
            "include": [
                {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "arm"}]}
            ]
        },
    )
    ok = _validate(service, res, vs, CodingInput(CS, "hand", display="Hand"))
    assert ok["result"] is True and ok["display"] == "Hand" and "issues" not in ok
    outside = _validate(service, res, vs, CodingInput(CS, "foot"))
    assert outside["result"] is False and "was not found in the value set" in outside["message"]
    unknown = _validate(service, res, vs, CodingInput(CS, "wing"))
    details = [i["details"]["coding"][0]["code"] for i in unknown["issues"]["issue"]]
    assert unknown["result"] is False and details == ["not-in-vs", "invalid-code"]
    wrong = _validate(service, res, vs, CodingInput(CS, "hand", display="Paw"))
    assert wrong["result"] is False and wrong["issues"]["issue"][0]["expression"] == [
        "Coding.display"
    ]
    lenient = _validate(
        service, res, vs, CodingInput(CS, "hand", display="Paw"), lenient_display=True
    )
    assert lenient["result"] is True and lenient["issues"]["issue"][0]["severity"] == "warning"
    no_system = _validate(service, res, None, CodingInput("http://nope", "x"))
    assert no_system["result"] is False and no_system["x-unknown-system"] == "http://nope"
    concept = _validate(
        service,
        res,
        vs,
        CodingInput(CS, "foot", path="CodeableConcept.coding[0]"),
        CodingInput(CS, "arm", path="CodeableConcept.coding[1]"),
        kind="CodeableConcept",
    )
    assert concept["result"] is True
    abstract = _validate(service, res, None, CodingInput(CS, "limb"), abstract=False)
    assert abstract["result"] is False


def test_lookup_subsumes_translate(service: TerminologyService) -> None:
    res = overlay(service)
    found = lookup(res, CS, "arm")
    params = found["parameter"]
    assert {"name": "display", "valueString": "Arm"} in params
    props = [(p["part"][0]["valueCode"], p["part"][-1]) for p in params if p["name"] == "property"]
    assert ("parent", {"name": "value", "valueCode": "limb"}) in props
    assert ("child", {"name": "value", "valueCode": "hand"}) in props
    only = lookup(res, CS, "arm", properties=["kind"])
    assert [p["part"][0]["valueCode"] for p in only["parameter"] if p["name"] == "property"] == [
        "kind"
    ]
    with pytest.raises(TerminologyError):
        lookup(res, CS, "wing")

    def outcome(a: str, b: str) -> str:
        return str(subsumes(res, CS, a, b)["parameter"][0]["valueCode"])

    assert outcome("limb", "hand") == "subsumes"
    assert outcome("hand", "limb") == "subsumed-by"
    assert outcome("arm", "arm") == "equivalent"
    assert outcome("arm", "leg") == "not-subsumed"
    cmap = {
        "resourceType": "ConceptMap",
        "url": "http://example.org/cm",
        "version": "1",
        "status": "active",
        "group": [
            {
                "source": CS,
                "target": "http://t",
                "element": [{"code": "arm", "target": [{"code": "A", "equivalence": "wider"}]}],
            }
        ],
    }
    res2 = res.with_overlay([cmap])
    answer = translate(res2, CS, "arm")
    assert answer["parameter"][0] == {"name": "result", "valueBoolean": True}
    parts = {p["name"]: p for p in answer["parameter"][1]["part"]}
    assert parts["equivalence"]["valueCode"] == "wider"
    assert parts["concept"]["valueCoding"] == {"system": "http://t", "code": "A"}
    back = translate(res2, "http://t", "A", reverse=True)
    assert back["parameter"][1]["part"][1]["valueCoding"]["code"] == "arm"
    assert translate(res2, CS, "leg")["parameter"][0]["valueBoolean"] is False


def test_protocol_adapter(service: TerminologyService) -> None:
    resources = TerminologyResources()
    resources.overlay = overlay(service).overlay  # a fixed set of resources, cached
    vs = valueset(
        "http://example.org/vs/arm",
        {
            "include": [
                {"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "arm"}]}
            ]
        },
    )
    resources.overlay[("ValueSet", vs["url"])] = [vs]
    adapter = ServiceTerminology(TerminologyService(resources))
    assert adapter.validate_code(vs["url"], CS, "hand") is True
    assert adapter.validate_code(vs["url"], CS, "foot") is False
    assert adapter.validate_code("http://unknown", CS, "foot") is None
    assert (
        adapter.member_of(
            {"coding": [{"system": CS, "code": "foot"}, {"system": CS, "code": "arm"}]}, vs["url"]
        )
        is True
    )
    assert sorted(adapter.expand(vs["url"])) == [(CS, "arm"), (CS, "hand")]
    assert sorted(adapter.subsumption(CS, "arm", above=False)) == [(CS, "arm"), (CS, "hand")]
    assert sorted(adapter.subsumption(CS, "arm", above=True)) == [(CS, "arm"), (CS, "limb")]


def test_a_date_and_a_semantic_version_are_not_ordered() -> None:
    """A versionless reference takes the newest version of one scheme; between a date and
    a semantic version the source found first (the call's resources) is used."""
    core = [codesystem("2018-08-12")]
    res = TerminologyResources(core=lambda: core)
    assert res.find("CodeSystem", CS)["version"] == "2018-08-12"  # type: ignore[index]
    call = res.with_overlay([codesystem("4.0.0")])
    assert call.find("CodeSystem", CS)["version"] == "4.0.0"  # type: ignore[index]
    newer = res.with_overlay([codesystem("2017-01-01"), codesystem("2019-01-01")])
    assert newer.find("CodeSystem", CS)["version"] == "2019-01-01"  # type: ignore[index]
    semver = TerminologyResources(core=lambda: [codesystem("1.10.0"), codesystem("1.9.2")])
    assert semver.find("CodeSystem", CS)["version"] == "1.10.0"  # type: ignore[index]
