"""The type model built from hl7.fhir.r4.core 4.0.1."""

from __future__ import annotations

from cmio.model import ElementDef, Model, TypeDef
from cmio.model.types import (
    K_BACKBONE,
    K_BOOLEAN,
    K_COMPLEX,
    K_RESOURCE,
    K_SHADOW,
    K_STRING,
)


def test_resource_type_counts(model: Model) -> None:
    assert len(model.resource_types) == 146
    assert {"Patient", "Observation", "Bundle", "Parameters", "Binary"} <= model.resource_types
    assert not {"Resource", "DomainResource", "MetadataResource"} & model.resource_types
    assert model.is_resource_type("Patient")
    assert not model.is_resource_type("DomainResource")
    assert not model.is_resource_type("HumanName")
    assert model.fhir_version == "4.0.1"


def test_type_kinds(model: Model) -> None:
    kinds: dict[str, set[str]] = {}
    for tdef in model.types.values():
        kinds.setdefault(tdef.kind, set()).add(tdef.name)
    assert len(kinds["primitive-type"]) == 20
    assert {"HumanName", "Quantity", "Age", "Element", "BackboneElement", "Dosage"} <= kinds[
        "complex-type"
    ]
    assert len(kinds["resource"]) == 148  # 146 + Resource + DomainResource
    abstract = {name for name, tdef in model.types.items() if tdef.abstract}
    assert abstract == {"Resource", "DomainResource", "Element", "BackboneElement"}
    # Profiles and logical models are not types.
    assert "SimpleQuantity" not in model.types
    assert "MoneyQuantity" not in model.types
    assert "vitalsigns" not in model.types
    assert model.types["Patient"].base == "DomainResource"
    assert model.types["DomainResource"].base == "Resource"
    assert model.types["Resource"].base is None
    assert model.types["Age"].base == "Quantity"
    assert model.types["code"].base == "string"
    assert model.types["Patient"].url == "http://hl7.org/fhir/StructureDefinition/Patient"


def test_patient_elements(model: Model) -> None:
    patient = model.types["Patient"]
    assert isinstance(patient, TypeDef)
    birth = patient.elements["birthDate"]
    assert isinstance(birth, ElementDef)
    assert (birth.name, birth.path, birth.min, birth.max, birth.types) == (
        "birthDate",
        "Patient.birthDate",
        0,
        1,
        ("date",),
    )
    assert birth.is_summary and not birth.is_modifier and birth.children is None
    name = patient.elements["name"]
    assert name.max is None and name.types == ("HumanName",) and name.repeats
    # Inherited elements are present, with their FHIR types.
    assert patient.elements["id"].types == ("id",)
    assert patient.elements["meta"].types == ("Meta",)
    assert patient.elements["contained"].types == ("Resource",)
    assert patient.elements["active"].is_modifier
    contact = patient.elements["contact"]
    assert contact.types == ("BackboneElement",)
    assert contact.children is not None
    assert contact.children["name"].path == "Patient.contact.name"
    assert {"id", "extension", "modifierExtension", "relationship"} <= set(contact.children)


def test_system_types_are_mapped(model: Model) -> None:
    assert model.types["HumanName"].elements["id"].types == ("string",)
    assert model.types["Extension"].elements["url"].types == ("uri",)
    assert model.types["date"].elements["value"].types == ("System.Date",)
    assert model.types["boolean"].elements["value"].types == ("System.Boolean",)
    assert model.types["Patient"].elements["contact"].children is not None
    assert model.types["Patient"].elements["contact"].children["id"].types == ("string",)


def test_choice_types(model: Model) -> None:
    deceased = model.types["Patient"].elements["deceased[x]"]
    assert deceased.choice and deceased.name == "deceased" and deceased.key == "deceased[x]"
    assert deceased.types == ("boolean", "dateTime")
    assert deceased.json_name("dateTime") == "deceasedDateTime"
    value = model.types["Observation"].elements["value[x]"]
    assert value.types == (
        "Quantity",
        "CodeableConcept",
        "string",
        "boolean",
        "integer",
        "Range",
        "Ratio",
        "SampledData",
        "time",
        "dateTime",
        "Period",
    )
    index = model.types["Observation"].json_index
    assert index["valueQuantity"].kind == K_COMPLEX
    assert index["valueQuantity"].element is value
    assert index["valueBoolean"].kind == K_BOOLEAN
    assert index["_valueString"].kind == K_SHADOW
    assert index["_valueString"].partner == "valueString"
    assert "_valueQuantity" not in index and "valueFoo" not in index and "value" not in index
    # Extension.value[x] allows every datatype.
    assert len(model.types["Extension"].elements["value[x]"].types) == 50


def test_json_index(model: Model) -> None:
    index = model.types["Patient"].json_index
    assert index["birthDate"].kind == K_STRING
    assert index["birthDate"].regex is model.types["date"].regex
    assert index["_birthDate"].members is model.types["Element"].json_index
    assert index["contact"].kind == K_BACKBONE
    contact = model.types["Patient"].elements["contact"]
    assert index["contact"].members is contact.json_index
    assert index["contained"].kind == K_RESOURCE
    assert index["name"].members is model.types["HumanName"].json_index
    assert index["name"].repeats and not index["gender"].repeats
    required = dict(model.types["Observation"].required)
    assert required == {"status": ("status", "_status"), "code": ("code",)}


def test_content_reference(model: Model) -> None:
    item = model.types["Questionnaire"].elements["item"]
    nested = item.children["item"] if item.children else None
    assert nested is not None
    assert nested.content_reference == "Questionnaire.item"
    assert nested.path == "Questionnaire.item.item"
    assert nested.types == ("BackboneElement",)
    assert nested.children is item.children
    assert nested.json_index is item.json_index
    # Not only ancestors: Bundle.entry.link is Bundle.link.
    bundle = model.types["Bundle"]
    entry_children = bundle.elements["entry"].children
    assert entry_children is not None
    assert entry_children["link"].children is bundle.elements["link"].children
    # A required element inside the referenced structure stays required.
    assert "linkId" in dict(nested.required)


def test_reference_targets(model: Model) -> None:
    subject = model.types["Observation"].elements["subject"]
    assert subject.types == ("Reference",)
    assert subject.target_types == ("Patient", "Group", "Device", "Location")
    assert model.types["Patient"].elements["managingOrganization"].target_types == ("Organization",)
    # Reference(Any) has no restriction.
    assert model.types["Provenance"].elements["target"].target_types == ()
    assert model.types["Extension"].elements["value[x]"].target_types == ()
    # canonical(...) targets are resolved too.
    assert model.types["Questionnaire"].elements["derivedFrom"].target_types == ("Questionnaire",)


def test_primitive_regexes(model: Model) -> None:
    def ok(type_name: str, value: str) -> bool:
        regex = model.types[type_name].regex
        assert regex is not None
        return regex.fullmatch(value) is not None

    assert ok("date", "2020") and ok("date", "2020-02") and ok("date", "2020-02-29")
    assert not ok("date", "2020-13") and not ok("date", "20")
    assert ok("dateTime", "2020-01-01T10:00:00+01:00") and not ok("dateTime", "2020-01-01T10:00")
    assert ok("instant", "2020-01-01T10:00:00.123Z") and not ok("instant", "2020-01-01")
    assert ok("time", "23:59:59") and not ok("time", "24:00:00")
    assert ok("id", "a-b.C1") and not ok("id", "a_b") and not ok("id", "x" * 65)
    assert ok("code", "a b") and not ok("code", " a") and not ok("code", "a  b")
    assert ok("oid", "urn:oid:1.2.3") and not ok("oid", "1.2.3")
    assert ok("uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520")
    assert ok("base64Binary", "aGVsbG8/") and not ok("base64Binary", "abc")
    assert ok("integer", "-12") and not ok("integer", "012")
    assert ok("positiveInt", "1") and not ok("positiveInt", "0")
    assert ok("decimal", "1.50") and not ok("decimal", "1.")
    assert ok("string", "any text") and not ok("string", "")
    assert model.types["xhtml"].regex is None
    assert model.types["HumanName"].regex is None
