"""Break one thing in a valid resource, get exactly one issue at the right place."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from cmio.model import Model
from cmio.validation import validate_structure

Json = dict[str, Any]

XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">John Doe</div>'
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"


def patient() -> Json:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
        "text": {"status": "generated", "div": XHTML},
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "identifier": [{"system": "urn:oid:1.2.3", "value": "123"}],
        "active": True,
        "name": [{"use": "official", "family": "Doe", "given": ["John", "Q"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
        "_birthDate": {"extension": [{"url": BIRTH_TIME, "valueDateTime": "1970-01-01T10:00:00Z"}]},
        "deceasedBoolean": False,
        "multipleBirthInteger": 2,
        "managingOrganization": {"reference": "Organization/o1"},
        "generalPractitioner": [{"reference": "#pr1"}],
        "contained": [{"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Who"}]}],
        "contact": [{"name": {"text": "Mum"}, "telecom": [{"system": "phone", "value": "1"}]}],
        "photo": [{"contentType": "image/png", "data": "aGVsbG8/", "size": 5}],
    }


def observation() -> Json:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}], "text": "Height"},
        "subject": {"reference": "Patient/p1/_history/2"},
        "effectiveDateTime": "2020-01-01T10:00:00+01:00",
        "issued": "2020-01-01T10:00:00.123Z",
        "valueQuantity": {"value": 180.5, "unit": "cm", "system": "http://unitsofmeasure.org"},
        "component": [{"code": {"text": "x"}, "valueInteger": 5}],
        "referenceRange": [{"low": {"value": 1}}],
    }


def bundle() -> Json:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": observation(),
                "request": {"method": "PUT", "url": "Observation/o1"},
            },
        ],
    }


def test_bases_are_valid(model: Model) -> None:
    for resource in (patient(), observation(), bundle()):
        assert validate_structure(model, resource) == []


def _set(path: str, value: Any) -> Callable[[Json], None]:
    """Mutation that sets a dotted path (integers index lists, len appends); ``...`` deletes."""

    def mutate(resource: Json) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(last) if last.isdigit() else last
        if value is ...:
            del node[key]
        elif isinstance(node, list) and key == len(node):
            node.append(value)
        else:
            node[key] = value

    return mutate


PAT, OBS, BUN = patient, observation, bundle
DEEP = "x" * 65

MUTATIONS: list[tuple[str, Callable[[], Json], Callable[[Json], None], str, str]] = [
    # Unknown elements and choice types
    ("unknown", PAT, _set("foo", 1), "structure", "Patient.foo"),
    ("choice-suffix", OBS, _set("valueFoo", "x"), "structure", "Observation.valueFoo"),
    ("choice-twice", OBS, _set("valueString", "x"), "structure", "Observation.valueString"),
    ("choice-base", OBS, _set("value", "x"), "structure", "Observation.value"),
    ("shadow-complex", PAT, _set("_name", [{"id": "a"}]), "structure", "Patient._name"),
    (
        "resourceType-nested",
        PAT,
        _set("name.0.resourceType", "X"),
        "structure",
        "Patient.name[0].resourceType",
    ),
    # JSON kinds and arrays
    ("object-for-array", PAT, _set("name", {"family": "x"}), "structure", "Patient.name"),
    ("array-for-max-1", PAT, _set("gender", ["male"]), "structure", "Patient.gender"),
    (
        "array-for-max-1-obj",
        PAT,
        _set("managingOrganization", [{"reference": "Organization/1"}]),
        "structure",
        "Patient.managingOrganization",
    ),
    ("scalar-for-array", PAT, _set("name.0.given", "John"), "structure", "Patient.name[0].given"),
    ("number-for-string", PAT, _set("birthDate", 1970), "structure", "Patient.birthDate"),
    ("string-for-bool", PAT, _set("active", "true"), "structure", "Patient.active"),
    ("number-for-bool", PAT, _set("active", 1), "structure", "Patient.active"),
    (
        "string-for-decimal",
        OBS,
        _set("valueQuantity.value", "180.5"),
        "structure",
        "Observation.valueQuantity.value",
    ),
    (
        "bool-for-integer",
        OBS,
        _set("component.0.valueInteger", True),
        "structure",
        "Observation.component[0].valueInteger",
    ),
    ("string-for-object", OBS, _set("code", "8302-2"), "structure", "Observation.code"),
    ("array-item-not-object", PAT, _set("name.1", "Doe"), "structure", "Patient.name[1]"),
    ("null-scalar", PAT, _set("birthDate", None), "structure", "Patient.birthDate"),
    (
        "null-object",
        PAT,
        _set("managingOrganization", None),
        "structure",
        "Patient.managingOrganization",
    ),
    # Empty things
    ("empty-string", PAT, _set("name.0.family", ""), "value", "Patient.name[0].family"),
    ("empty-object", PAT, _set("contact.0.name", {}), "structure", "Patient.contact[0].name"),
    ("empty-array", PAT, _set("identifier", []), "structure", "Patient.identifier"),
    ("empty-primitive-array", PAT, _set("name.0.given", []), "structure", "Patient.name[0].given"),
    # Primitive formats
    ("bad-date", PAT, _set("birthDate", "1970-13-01"), "value", "Patient.birthDate"),
    (
        "bad-dateTime",
        OBS,
        _set("effectiveDateTime", "2020-01-01T10:00"),
        "value",
        "Observation.effectiveDateTime",
    ),
    ("bad-instant", OBS, _set("issued", "2020-01-01"), "value", "Observation.issued"),
    ("bad-code", PAT, _set("gender", "male "), "value", "Patient.gender"),
    ("bad-code-inner", PAT, _set("gender", "ma  le"), "value", "Patient.gender"),
    ("bad-id", PAT, _set("id", "bad id!"), "value", "Patient.id"),
    ("long-id", PAT, _set("id", DEEP), "value", "Patient.id"),
    (
        "bad-uri",
        PAT,
        _set("identifier.0.system", "http://a b"),
        "value",
        "Patient.identifier[0].system",
    ),
    ("bad-base64", PAT, _set("photo.0.data", "abc"), "value", "Patient.photo[0].data"),
    ("bad-base64-char", PAT, _set("photo.0.data", "ab!c"), "value", "Patient.photo[0].data"),
    ("bad-unsignedInt", PAT, _set("photo.0.size", -1), "value", "Patient.photo[0].size"),
    (
        "int-out-of-range",
        OBS,
        _set("component.0.valueInteger", 2**31),
        "value",
        "Observation.component[0].valueInteger",
    ),
    (
        "int-with-fraction",
        PAT,
        _set("multipleBirthInteger", 2.5),
        "value",
        "Patient.multipleBirthInteger",
    ),
    (
        "int-as-decimal",
        PAT,
        _set("multipleBirthInteger", Decimal("2.0")),
        "value",
        "Patient.multipleBirthInteger",
    ),
    (
        "nan-decimal",
        OBS,
        _set("valueQuantity.value", float("nan")),
        "value",
        "Observation.valueQuantity.value",
    ),
    (
        "inf-decimal",
        OBS,
        _set("valueQuantity.value", Decimal("Infinity")),
        "value",
        "Observation.valueQuantity.value",
    ),
    (
        "too-long",
        PAT,
        _set("name.0.family", "x" * (1024 * 1024 + 1)),
        "too-long",
        "Patient.name[0].family",
    ),
    ("bad-given-item", PAT, _set("name.0.given.1", 7), "structure", "Patient.name[0].given[1]"),
    ("bad-given-format", PAT, _set("name.0.given.1", ""), "value", "Patient.name[0].given[1]"),
    # Primitive extensions and null alignment
    (
        "null-without-twin",
        PAT,
        _set("name.0.given.0", None),
        "structure",
        "Patient.name[0].given[0]",
    ),
    (
        "twin-misaligned",
        PAT,
        _set("name.0._given", [{"id": "g"}]),
        "structure",
        "Patient.name[0].given",
    ),
    ("twin-not-object", PAT, _set("_birthDate", "x"), "structure", "Patient._birthDate"),
    (
        "twin-bad-item",
        PAT,
        _set("name.0._given", [None, 3]),
        "structure",
        "Patient.name[0]._given[1]",
    ),
    ("twin-scalar", PAT, _set("name.0._given", {"id": "x"}), "structure", "Patient.name[0]._given"),
    (
        "twin-value-key",
        PAT,
        _set("_birthDate.value", "1970"),
        "structure",
        "Patient.birthDate.value",
    ),
    (
        "twin-ext-no-url",
        PAT,
        _set("_birthDate.extension.0.url", ...),
        "required",
        "Patient.birthDate.extension[0].url",
    ),
    (
        "twin-without-value-null",
        PAT,
        _set("name.0._family", None),
        "structure",
        "Patient.name[0]._family",
    ),
    # Cardinality
    ("missing-status", OBS, _set("status", ...), "required", "Observation.status"),
    ("missing-code", OBS, _set("code", ...), "required", "Observation.code"),
    ("missing-bundle-type", BUN, _set("type", ...), "required", "Bundle.type"),
    (
        "missing-request-url",
        BUN,
        _set("entry.1.request.url", ...),
        "required",
        "Bundle.entry[1].request.url",
    ),
    # Extensions (ext-1) and narrative
    ("ext-no-url", PAT, _set("extension.0.url", ...), "required", "Patient.extension[0].url"),
    (
        "ext-no-value",
        PAT,
        _set("extension.0.valueString", ...),
        "invariant",
        "Patient.extension[0]",
    ),
    (
        "ext-value-and-ext",
        PAT,
        _set("extension.0.extension", [{"url": "a", "valueCode": "b"}]),
        "invariant",
        "Patient.extension[0]",
    ),
    (
        "ext-two-values",
        PAT,
        _set("extension.0.valueCode", "x"),
        "structure",
        "Patient.extension[0].valueCode",
    ),
    ("narrative-no-div", PAT, _set("text.div", ...), "required", "Patient.text.div"),
    ("narrative-not-xhtml", PAT, _set("text.div", "John Doe"), "value", "Patient.text.div"),
    ("narrative-no-status", PAT, _set("text.status", ...), "required", "Patient.text.status"),
    # References
    (
        "ref-no-id",
        PAT,
        _set("managingOrganization.reference", "Organization"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-bare-id",
        PAT,
        _set("managingOrganization.reference", "o1"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-unknown-type",
        PAT,
        _set("managingOrganization.reference", "Foo/1"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-wrong-target",
        PAT,
        _set("managingOrganization.reference", "Patient/1"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-bad-id",
        PAT,
        _set("managingOrganization.reference", "Organization/a_b"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-bad-uuid",
        PAT,
        _set("managingOrganization.reference", "urn:uuid:xyz"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-bad-oid",
        PAT,
        _set("managingOrganization.reference", "urn:oid:x.y"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-space",
        PAT,
        _set("managingOrganization.reference", "Organization/ 1"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-conditional-wrong-type",
        PAT,
        _set("managingOrganization.reference", "Patient?identifier=a|b"),
        "value",
        "Patient.managingOrganization.reference",
    ),
    (
        "ref-in-array",
        OBS,
        _set("subject.reference", "Medication/m1"),
        "value",
        "Observation.subject.reference",
    ),
    (
        "ref-not-string",
        PAT,
        _set("managingOrganization.reference", 5),
        "structure",
        "Patient.managingOrganization.reference",
    ),
    # Contained resources
    (
        "contained-unknown-element",
        PAT,
        _set("contained.0.foo", 1),
        "structure",
        "Patient.contained[0].foo",
    ),
    (
        "contained-no-type",
        PAT,
        _set("contained.0.resourceType", ...),
        "required",
        "Patient.contained[0].resourceType",
    ),
    (
        "contained-unknown-type",
        PAT,
        _set("contained.0.resourceType", "Doctor"),
        "not-supported",
        "Patient.contained[0].resourceType",
    ),
    (
        "contained-abstract",
        PAT,
        _set("contained.0.resourceType", "DomainResource"),
        "invalid",
        "Patient.contained[0].resourceType",
    ),
    (
        "contained-nested",
        PAT,
        _set("contained.0.contained", [{"resourceType": "Basic", "code": {"text": "x"}}]),
        "invariant",
        "Patient.contained[0].contained",
    ),
    ("contained-bad-id", PAT, _set("contained.0.id", "a b"), "value", "Patient.contained[0].id"),
    (
        "contained-not-array",
        PAT,
        _set("contained", {"resourceType": "Basic", "code": {"text": "x"}}),
        "structure",
        "Patient.contained",
    ),
    # Bundles validate their entries
    (
        "bundle-entry-unknown",
        BUN,
        _set("entry.0.resource.foo", 1),
        "structure",
        "Bundle.entry[0].resource.foo",
    ),
    (
        "bundle-entry-missing",
        BUN,
        _set("entry.1.resource.status", ...),
        "required",
        "Bundle.entry[1].resource.status",
    ),
    (
        "bundle-entry-type",
        BUN,
        _set("entry.1.resource.resourceType", "Nope"),
        "not-supported",
        "Bundle.entry[1].resource.resourceType",
    ),
    (
        "bundle-entry-deep",
        BUN,
        _set("entry.0.resource.name.0.given.0", 1),
        "structure",
        "Bundle.entry[0].resource.name[0].given[0]",
    ),
]


@pytest.mark.parametrize(
    ("make", "mutate", "code", "expression"),
    [pytest.param(m, f, c, e, id=name) for name, m, f, c, e in MUTATIONS],
)
def test_mutation(
    model: Model,
    make: Callable[[], Json],
    mutate: Callable[[Json], None],
    code: str,
    expression: str,
) -> None:
    resource = make()
    mutate(resource)
    issues = validate_structure(model, resource)
    assert [(i.code, i.expression) for i in issues] == [(code, expression)], issues
    issue = issues[0]
    assert issue.severity == "error"
    assert issue.message


def test_mutation_names_are_unique() -> None:
    names = [m[0] for m in MUTATIONS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "reference",
    [
        "Organization/o1",
        "Organization/o1/_history/3",
        "http://example.org/fhir/Organization/o1",
        "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        "urn:oid:1.2.840.10008",
        "Organization?identifier=https://github.com/synthetichealth/synthea|abc",
        "#org",
    ],
)
def test_valid_references(model: Model, reference: str) -> None:
    resource = patient()
    resource["managingOrganization"]["reference"] = reference
    assert validate_structure(model, resource) == []


def test_primitive_twins_with_nulls(model: Model) -> None:
    resource = patient()
    ext = [{"url": "http://example.org/syllables", "valueInteger": 2}]
    resource["name"][0]["given"] = [None, "Q"]
    resource["name"][0]["_given"] = [{"extension": ext}, None]
    resource["_gender"] = {"id": "g1", "extension": ext}
    resource["_active"] = {"extension": ext}
    del resource["active"]  # an extension without a value is allowed
    assert validate_structure(model, resource) == []


def test_two_problems_give_two_issues(model: Model) -> None:
    resource = observation()
    resource["status"] = "final "
    resource["foo"] = {}
    issues = validate_structure(model, resource)
    assert sorted((i.code, i.expression) for i in issues) == [
        ("structure", "Observation.foo"),
        ("value", "Observation.status"),
    ]


def test_messages_say_what_was_expected(model: Model) -> None:
    resource = observation()
    resource["valueFoo"] = 1
    del resource["valueQuantity"]
    [issue] = validate_structure(model, resource)
    assert "valueFoo" in issue.message and "valueQuantity" in issue.message
    resource = patient()
    resource["birthDate"] = 1970
    [issue] = validate_structure(model, resource)
    assert "string" in issue.message and "number" in issue.message
    assert issue.to_fhir() == {
        "severity": "error",
        "code": "structure",
        "diagnostics": issue.message,
        "expression": ["Patient.birthDate"],
    }


@pytest.mark.parametrize(
    ("resource", "code", "expression"),
    [
        ([], "structure", ""),
        ("Patient", "structure", ""),
        ({}, "required", "resourceType"),
        ({"id": "x"}, "required", "resourceType"),
        ({"resourceType": "Foo"}, "not-supported", "resourceType"),
        ({"resourceType": 3}, "not-supported", "resourceType"),
        ({"resourceType": "HumanName"}, "not-supported", "resourceType"),
        ({"resourceType": "Resource"}, "invalid", "resourceType"),
    ],
)
def test_root_problems_are_fatal(model: Model, resource: Any, code: str, expression: str) -> None:
    issues = validate_structure(model, resource)
    assert [(i.severity, i.code, i.expression) for i in issues] == [("fatal", code, expression)]


def test_minimal_resources(model: Model) -> None:
    assert validate_structure(model, {"resourceType": "Patient"}) == []
    assert validate_structure(model, {"resourceType": "Binary", "contentType": "text/plain"}) == []
    assert [i.expression for i in validate_structure(model, {"resourceType": "Binary"})] == [
        "Binary.contentType"
    ]


def test_backbone_and_content_reference(model: Model) -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [{"linkId": "1.1", "type": "string", "item": [{"type": "display"}]}],
            }
        ],
    }
    issues = validate_structure(model, questionnaire)
    assert [(i.code, i.expression) for i in issues] == [
        ("required", "Questionnaire.item[0].item[0].item[0].linkId")
    ]


def test_deep_nesting_is_bounded(model: Model) -> None:
    item: Json = {"linkId": "leaf", "type": "display"}
    for depth in range(200):
        item = {"linkId": str(depth), "type": "group", "item": [item]}
    questionnaire = {"resourceType": "Questionnaire", "status": "active", "item": [item]}
    issues = validate_structure(model, questionnaire)
    assert [i.code for i in issues] == ["too-long"]
    assert issues[0].expression.startswith("Questionnaire.item[0].item[0].item[0]")
    ext: Json = {"url": "u", "valueString": "v"}
    for _ in range(5000):
        ext = {"url": "u", "extension": [ext]}
    issues = validate_structure(
        model, {"resourceType": "Basic", "code": {"text": "x"}, "extension": [ext]}
    )
    assert [i.code for i in issues] == ["too-long"]


def test_input_is_not_modified(model: Model) -> None:
    resource = patient()
    resource["foo"] = 1
    before = copy.deepcopy(resource)
    validate_structure(model, resource)
    assert resource == before


def test_issue_count_is_bounded(model: Model) -> None:
    from cmio.validation.structural import MAX_ISSUES

    hostile: Json = {"resourceType": "Basic", "code": {"text": "x"}}
    hostile.update({f"bad{i}": i for i in range(5000)})
    issues = validate_structure(model, hostile)
    assert len(issues) == MAX_ISSUES + 1
    assert issues[-1].code == "too-costly"
    assert {i.code for i in issues[:-1]} == {"structure"}


def test_remembering_validator_gives_the_same_issues(model: Model) -> None:
    """One StructureValidator (its memo warmed by the valid bases, and small enough to
    be emptied on the way) over every mutation, twice, and a reference valid for one
    element but not for another: exactly the issues of ``validate_structure``."""
    from cmio.validation.structural import StructureValidator

    remembering = StructureValidator(model, limit=20)
    for make in (patient, observation, bundle):
        assert remembering(make()) == []
    for _ in range(2):
        for _, make, mutate, _, _ in MUTATIONS:
            resource = make()
            mutate(resource)
            assert remembering(resource) == validate_structure(model, resource)
    to_patient = {"reference": "Patient/p1"}  # a subject, not an encounter
    both = {**observation(), "subject": to_patient, "encounter": to_patient}
    expected = validate_structure(model, both)
    assert [i.expression for i in expected] == ["Observation.encounter.reference"]
    assert remembering(both) == expected
    assert remembering(both) == expected


def test_the_validator_remembers_small_datatypes_only(model: Model) -> None:
    """Large or rarely repeated values (an Attachment, a Narrative) are walked every time;
    a repeated CodeableConcept (and its Coding) is remembered once."""
    from cmio.validation.structural import StructureValidator

    validator = StructureValidator(model)
    code = {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]}
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": code,
        "content": [{"attachment": {"contentType": "text/plain", "data": "QUJD" * 2000}}],
    }
    assert validator(document) == [] and validator(dict(document)) == []
    kept = [key[-1] for key in validator._memo]  # the CodeableConcept and its Coding
    assert len(kept) == 2 and all(b"11488-4" in data and b"QUJD" not in data for data in kept)
