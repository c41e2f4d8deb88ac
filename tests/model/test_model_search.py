"""Search parameters and compartments in the model."""

from __future__ import annotations

import pytest

from cmio.model import CompartmentDef, Model, SearchParamDef


def test_standard_search_param_count(model: Model) -> None:
    assert len(model.search_params) == 1375
    assert all(isinstance(p, SearchParamDef) for p in model.search_params)
    assert len({p.url for p in model.search_params}) == 1375
    types = {p.type for p in model.search_params}
    assert types == {
        "string",
        "token",
        "reference",
        "date",
        "number",
        "quantity",
        "uri",
        "composite",
        "special",
    }


def test_patient_birthdate(model: Model) -> None:
    birthdate = model.search_params_for("Patient")["birthdate"]
    assert birthdate.type == "date"
    assert birthdate.url == "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    assert "Patient.birthDate" in (birthdate.expression or "").split(" | ")
    assert birthdate.expression_for("Patient") == "Patient.birthDate"
    assert birthdate.expression_for("Person") == "Person.birthDate"
    assert set(birthdate.base) == {"Patient", "Person", "RelatedPerson"}
    assert "ge" in birthdate.comparators
    assert birthdate.xpath_usage == "normal"


def test_observation_code(model: Model) -> None:
    code = model.search_params_for("Observation")["code"]
    assert code.type == "token"
    assert code.expression_for("Observation") == "Observation.code"
    cast = model.search_params_for("MedicationRequest")["code"]
    assert cast.expression_for("MedicationRequest") == (
        "(MedicationRequest.medication as CodeableConcept)"
    )
    subject = model.search_params_for("Observation")["subject"]
    assert subject.type == "reference"
    assert "Patient" in subject.target


def test_base_parameters_are_inherited(model: Model) -> None:
    patient = model.search_params_for("Patient")
    for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_text"):
        assert code in patient, code
    assert {"_content", "_query"} <= set(patient)
    assert patient["_id"].expression == "Resource.id"
    assert patient["_id"].type == "token"
    assert patient["_lastUpdated"].type == "date"
    assert patient["_text"].expression is None
    # Binary is a Resource, not a DomainResource: no _text.
    binary = model.search_params_for("Binary")
    assert "_id" in binary and "_text" not in binary
    assert set(model.search_params_for("Resource")) == {
        "_content",
        "_id",
        "_lastUpdated",
        "_profile",
        "_query",
        "_security",
        "_source",
        "_tag",
    }


def test_search_params_for_returns_a_copy(model: Model) -> None:
    params = model.search_params_for("Patient")
    params.clear()
    assert model.search_params_for("Patient")


def test_search_params_for_unknown_type(model: Model) -> None:
    with pytest.raises(KeyError):
        model.search_params_for("NotAType")


def test_composite(model: Model) -> None:
    combo = model.search_params_for("Observation")["code-value-quantity"]
    assert combo.type == "composite"
    assert combo.components == (
        ("http://hl7.org/fhir/SearchParameter/clinical-code", "code"),
        ("http://hl7.org/fhir/SearchParameter/Observation-value-quantity", "value.as(Quantity)"),
    )


def test_every_resource_type_has_search_params(model: Model) -> None:
    for rtype in model.resource_types:
        params = model.search_params_for(rtype)
        assert "_id" in params
        for code, param in params.items():
            assert param.code == code
            assert {rtype, "Resource", "DomainResource"} & set(param.base)


def test_compartments(model: Model) -> None:
    assert set(model.compartments) == {
        "Patient",
        "Encounter",
        "RelatedPerson",
        "Practitioner",
        "Device",
    }
    patient = model.compartments["Patient"]
    assert isinstance(patient, CompartmentDef)
    assert patient.url == "http://hl7.org/fhir/CompartmentDefinition/patient"
    assert patient.resources["Observation"] == ("subject", "performer")
    assert patient.resources["Patient"] == ("link",)
    assert "Organization" not in patient.resources  # not in the compartment
    assert len(patient.resources) == 66
    assert model.compartments["Encounter"].resources["Encounter"] == ("{def}",)
    # Every param code is a real search parameter of that type.
    for compartment in model.compartments.values():
        for rtype, codes in compartment.resources.items():
            known = model.search_params_for(rtype)
            for code in codes:
                assert code == "{def}" or code in known, (compartment.code, rtype, code)
