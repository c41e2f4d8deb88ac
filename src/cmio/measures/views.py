"""The ViewDefinitions the quality measures read: flat QI-Core-shaped tables.

Each table is a SQL on FHIR v2 ViewDefinition
(https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html) run by
:mod:`cmio.views` on the chosen engine. Coded elements are unrolled with ``forEach``
into one row per coding (``system``, ``code``) so that population SQL joins them
against value-set expansions (:mod:`cmio.measures.valuesets`). Dates stay FHIR text
(``2026-03-07T16:46:22-05:00``); the population SQL takes the local calendar day,
the first ten characters (see ``docs/measures.md``).

A measure names the tables it needs (``views:`` in its YAML); :func:`measure_views`
returns their definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["VIEW_NAMES", "measure_views", "view_definition"]


def _col(name: str, path: str, type_: str | None = None) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "path": path}
    if type_ is not None:
        column["type"] = type_
    return column


def _codings(path: str) -> dict[str, Any]:
    return {
        "forEach": path,
        "column": [_col("system", "system"), _col("code", "code")],
    }


def _view(resource: str, name: str, *selects: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "ViewDefinition",
        "name": name,
        "status": "active",
        "resource": resource,
        "select": list(selects),
    }


_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
_SUBJECT = "subject.getReferenceKey(Patient)"
_QUANTITY = "value.ofType(Quantity).value"


def _definitions() -> dict[str, dict[str, Any]]:
    race = f"extension('{_US_CORE}us-core-race').extension('ombCategory').value.ofType(Coding)"
    ethnicity = (
        f"extension('{_US_CORE}us-core-ethnicity').extension('ombCategory').value.ofType(Coding)"
    )
    return {
        "mp_patient": _view(
            "Patient",
            "mp_patient",
            {
                "column": [
                    _col("patient_id", "getResourceKey()"),
                    _col("birth_date", "birthDate"),
                    _col("gender", "gender"),
                    _col("race", f"{race}.code.first()"),
                    _col("ethnicity", f"{ethnicity}.code.first()"),
                    _col("gp_id", "generalPractitioner.getReferenceKey(Practitioner).first()"),
                    _col("deceased", "deceased.ofType(dateTime)"),
                ]
            },
        ),
        "mp_encounter": _view(
            "Encounter",
            "mp_encounter",
            {
                "column": [
                    _col("encounter_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("status", "status"),
                    _col("class_code", "class.code"),
                    _col("start_time", "period.start"),
                    _col("end_time", "period.end"),
                    _col(
                        "discharge_code", "hospitalization.dischargeDisposition.coding.code.first()"
                    ),
                    _col(
                        "practitioner_id",
                        "participant.individual.getReferenceKey(Practitioner).first()",
                    ),
                ]
            },
        ),
        "mp_encounter_code": _view(
            "Encounter",
            "mp_encounter_code",
            {"column": [_col("encounter_id", "getResourceKey()"), _col("patient_id", _SUBJECT)]},
            _codings("type.coding"),
        ),
        "mp_claim_item": _view(
            "Claim",
            "mp_claim_item",
            {"column": [_col("patient_id", "patient.getReferenceKey(Patient)")]},
            {
                "forEach": "item",
                "column": [
                    _col("encounter_id", "encounter.getReferenceKey(Encounter).first()"),
                    _col("serviced", "serviced.ofType(date)"),
                ],
                "select": [_codings("productOrService.coding")],
            },
        ),
        "mp_condition": _view(
            "Condition",
            "mp_condition",
            {
                "column": [
                    _col("condition_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("clinical_status", "clinicalStatus.coding.code.first()"),
                    _col("verification_status", "verificationStatus.coding.code.first()"),
                    _col("onset", "onset.ofType(dateTime)"),
                    _col("onset_start", "onset.ofType(Period).start"),
                    _col("abatement", "abatement.ofType(dateTime)"),
                    _col("recorded", "recordedDate"),
                ]
            },
            _codings("code.coding"),
        ),
        "mp_observation": _view(
            "Observation",
            "mp_observation",
            {
                "column": [
                    _col("observation_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("encounter_id", "encounter.getReferenceKey(Encounter)"),
                    _col("status", "status"),
                    _col("effective", "effective.ofType(dateTime)"),
                    _col("effective_end", "effective.ofType(Period).end"),
                    _col("issued", "issued"),
                    _col("value_num", _QUANTITY, "decimal"),
                    _col("value_code", "value.ofType(CodeableConcept).coding.code.first()"),
                    _col("value_text", "value.ofType(string)"),
                ]
            },
            _codings("code.coding"),
        ),
        "mp_observation_component": _view(
            "Observation",
            "mp_observation_component",
            {
                "column": [
                    _col("observation_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("encounter_id", "encounter.getReferenceKey(Encounter)"),
                    _col("status", "status"),
                    _col("effective", "effective.ofType(dateTime)"),
                    _col("effective_end", "effective.ofType(Period).end"),
                ]
            },
            {
                "forEach": "component",
                "column": [_col("value_num", _QUANTITY, "decimal")],
                "select": [_codings("code.coding")],
            },
        ),
        "mp_procedure": _view(
            "Procedure",
            "mp_procedure",
            {
                "column": [
                    _col("procedure_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("status", "status"),
                    _col("performed", "performed.ofType(dateTime)"),
                    _col("performed_end", "performed.ofType(Period).end"),
                    _col("body_site", "bodySite.coding.code.first()"),
                ]
            },
            _codings("code.coding"),
        ),
        "mp_diagnostic_report": _view(
            "DiagnosticReport",
            "mp_diagnostic_report",
            {
                "column": [
                    _col("report_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("status", "status"),
                    _col("effective", "effective.ofType(dateTime)"),
                    _col("effective_end", "effective.ofType(Period).end"),
                ]
            },
            _codings("code.coding"),
        ),
        "mp_service_request": _view(
            "ServiceRequest",
            "mp_service_request",
            {
                "column": [
                    _col("request_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("status", "status"),
                    _col("intent", "intent"),
                    _col("authored", "authoredOn"),
                ]
            },
            _codings("code.coding"),
        ),
        "mp_medication_request": _view(
            "MedicationRequest",
            "mp_medication_request",
            {
                "column": [
                    _col("request_id", "getResourceKey()"),
                    _col("patient_id", _SUBJECT),
                    _col("status", "status"),
                    _col("intent", "intent"),
                    _col("authored", "authoredOn"),
                ]
            },
            _codings("medication.ofType(CodeableConcept).coding"),
        ),
        "mp_coverage": _view(
            "Coverage",
            "mp_coverage",
            {
                "column": [
                    _col("coverage_id", "getResourceKey()"),
                    _col("patient_id", "beneficiary.getReferenceKey(Patient)"),
                    _col("status", "status"),
                    _col("payor", "payor.first().display"),
                    _col("payor_id", "payor.first().getReferenceKey()"),
                    _col("start_date", "period.start"),
                    _col("end_date", "period.end"),
                ]
            },
        ),
        "mp_practitioner_role": _view(
            "PractitionerRole",
            "mp_practitioner_role",
            {
                "column": [
                    _col("practitioner_id", "practitioner.getReferenceKey(Practitioner)"),
                    _col("organization_id", "organization.getReferenceKey(Organization)"),
                    _col("active", "active", "boolean"),
                ]
            },
        ),
        "mp_organization": _view(
            "Organization",
            "mp_organization",
            {"column": [_col("organization_id", "getResourceKey()"), _col("name", "name")]},
        ),
        "mp_practitioner": _view(
            "Practitioner",
            "mp_practitioner",
            {
                "column": [
                    _col("practitioner_id", "getResourceKey()"),
                    _col("family", "name.first().family"),
                    _col("given", "name.first().given.first()"),
                ]
            },
        ),
    }


VIEW_NAMES: tuple[str, ...] = tuple(_definitions())
"""The names of the measure tables, in a stable order."""


def view_definition(name: str) -> dict[str, Any]:
    """The ViewDefinition JSON of one measure table.

    Raises:
        KeyError: no such table.
    """
    definitions = _definitions()
    if name not in definitions:
        raise KeyError(f"unknown measure view {name!r}; known: {', '.join(VIEW_NAMES)}")
    return definitions[name]


def measure_views(names: Iterable[str]) -> Mapping[str, dict[str, Any]]:
    """The ViewDefinitions of the named tables (deduplicated, in the order given)."""
    definitions = _definitions()
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in definitions:
            raise KeyError(f"unknown measure view {name!r}; known: {', '.join(VIEW_NAMES)}")
        out[name] = definitions[name]
    return out
