"""Curated code tables for the synthetic health system: real codes, with display names.

Every code used by :mod:`cmio.synth` comes from here, so the tests can check each
coded element of the output against these tables (and ICD-10-CM codes against the
2026 release shipped by PyPI ``simple-icd-10-cm``). Code systems:

* SNOMED CT (http://snomed.info/sct), LOINC (http://loinc.org), RxNorm
  (http://www.nlm.nih.gov/research/umls/rxnorm), ICD-10-CM
  (http://hl7.org/fhir/sid/icd-10-cm), CVX (http://hl7.org/fhir/sid/cvx), CPT
  (http://www.ama-assn.org/go/cpt), HCPCS, NUCC provider taxonomy, CDC Race and
  Ethnicity (urn:oid:2.16.840.1.113883.6.238) and UCUM units; see
  https://hl7.org/fhir/R4/terminologies-systems.html.

Clinical tables (conditions, observations, medications...) live in
:mod:`cmio.synth.clinical_codes`; this module holds the systems, the :class:`Code`
type and the administrative tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ALLERGIES",
    "CDCREC",
    "CPT",
    "CVX",
    "ETHNICITIES",
    "HCPCS",
    "ICD10CM",
    "LAB_PROCEDURE",
    "LOINC",
    "MAMMOGRAM_REPORT",
    "NOTE_TYPES",
    "NUCC",
    "RACES",
    "RXNORM",
    "SNOMED",
    "SPECIALTIES",
    "UCUM",
    "Allergy",
    "Code",
    "Specialty",
    "concept",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NUCC = "http://nucc.org/provider-taxonomy"
UCUM = "http://unitsofmeasure.org"
CDCREC = "urn:oid:2.16.840.1.113883.6.238"


@dataclass(frozen=True, slots=True)
class Code:
    """One code of a code system, with its display and its FHIR ``Coding`` JSON.

    Attributes:
        system: code system URI (https://hl7.org/fhir/R4/datatypes.html#Coding).
        code: the code.
        display: the display name.
    """

    system: str
    code: str
    display: str
    coding: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "coding", {"system": self.system, "code": self.code, "display": self.display}
        )


def concept(*codes: Code, text: str | None = None) -> dict[str, Any]:
    """A FHIR ``CodeableConcept`` JSON with the given codings (a shared template: don't mutate).

    See https://hl7.org/fhir/R4/datatypes.html#CodeableConcept.
    """
    out: dict[str, Any] = {"coding": [c.coding for c in codes]}
    out["text"] = text or codes[0].display
    return out


def _snomed(code: str, display: str) -> Code:
    return Code(SNOMED, code, display)


@dataclass(frozen=True, slots=True)
class Specialty:
    """A clinical department's specialty.

    Attributes:
        key: short name used in this package.
        name: department name.
        nucc: NUCC taxonomy code of its physicians (https://www.nucc.org/).
        snomed: SNOMED CT practice setting code (FHIR c80-practice-codes).
        location_type: v3-RoleCode location type of its clinic or unit.
        per_10k: physicians per 10,000 patients (US workforce, AAMC Physician
            Specialty Data Report 2022, scaled to a regional system's panel).
        minimum: physicians at least, whatever the system's size.
    """

    key: str
    name: str
    nucc: Code
    snomed: Code
    location_type: Code
    per_10k: float
    minimum: int


_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# fmt: off
SPECIALTIES: tuple[Specialty, ...] = (
    Specialty("primary", "Primary Care", Code(NUCC, "207Q00000X", "Family Medicine Physician"), _snomed("419772000", "Family practice"), Code(_ROLE, "FMC", "Family medicine clinic"), 7.0, 4),
    Specialty("internal", "Internal Medicine", Code(NUCC, "207R00000X", "Internal Medicine Physician"), _snomed("419192003", "Internal medicine"), Code(_ROLE, "GIM", "General internal medicine clinic"), 2.0, 1),
    Specialty("pediatrics", "Pediatrics", Code(NUCC, "208000000X", "Pediatrics Physician"), _snomed("394537008", "Pediatric specialty"), Code(_ROLE, "PEDC", "Pediatrics clinic"), 2.0, 1),
    Specialty("cardiology", "Cardiology", Code(NUCC, "207RC0000X", "Cardiovascular Disease Physician"), _snomed("394579002", "Cardiology"), Code( _ROLE, "CARD", "Ambulatory Health Care Facilities; Clinic/Center; Rehabilitation: Cardiac Facilities"), 0.8, 1),
    Specialty("endocrinology", "Endocrinology", Code(NUCC, "207RE0101X", "Endocrinology, Diabetes & Metabolism Physician"), _snomed("394583002", "Endocrinology"), Code(_ROLE, "ENDO", "Endocrinology clinic"), 0.3, 1),
    Specialty("pulmonology", "Pulmonology", Code(NUCC, "207RP1001X", "Pulmonary Disease Physician"), _snomed("418112009", "Pulmonary medicine"), Code(_ROLE, "PROFF", "Provider's Office"), 0.4, 1),
    Specialty("psychiatry", "Behavioral Health", Code(NUCC, "2084P0800X", "Psychiatry Physician"), _snomed("394587001", "Psychiatry"), Code(_ROLE, "PROFF", "Provider's Office"), 0.8, 1),
    Specialty("obstetrics", "Obstetrics and Gynecology", Code(NUCC, "207V00000X", "Obstetrics & Gynecology Physician"), _snomed("394585009", "Obstetrics and gynecology"), Code(_ROLE, "OB", "Obstetrics clinic"), 1.2, 1),
    Specialty("oncology", "Oncology", Code(NUCC, "207RX0202X", "Medical Oncology Physician"), _snomed("394593009", "Medical oncology"), Code(_ROLE, "ONCL", "Medical oncology clinic"), 0.5, 1),
    Specialty("gastroenterology", "Gastroenterology", Code(NUCC, "207RG0100X", "Gastroenterology Physician"), _snomed("394584008", "Gastroenterology"), Code(_ROLE, "PROFF", "Provider's Office"), 0.5, 1),
    Specialty("radiology", "Radiology", Code(NUCC, "2085R0202X", "Diagnostic Radiology Physician"), _snomed("394914008", "Radiology"), Code(_ROLE, "HU", "Hospital unit"), 0.6, 1),
    Specialty("emergency", "Emergency Department", Code(NUCC, "207P00000X", "Emergency Medicine Physician"), _snomed("773568002", "Emergency medicine"), Code(_ROLE, "ER", "Emergency room"), 1.5, 2),
    Specialty("inpatient", "Inpatient Medicine", Code(NUCC, "208M00000X", "Hospitalist"), _snomed("419192003", "Internal medicine"), Code(_ROLE, "HU", "Hospital unit"), 1.5, 2),
)
# fmt: on
"""Departments of every hospital or clinic (primary care ones at every clinic)."""

MAMMOGRAM_REPORT = Code(LOINC, "24606-6", "MG Breast Screening")
"""Screening mammography report (LOINC; in the HEDIS/eCQM Mammography value set)."""
LAB_PROCEDURE = Code(SNOMED, "108252007", "Laboratory procedure")
"""ServiceRequest category of lab orders (SNOMED CT, US Core ServiceRequest)."""
NURSE_TAXONOMY = Code(NUCC, "163W00000X", "Registered Nurse")
NP_TAXONOMY = Code(NUCC, "363LF0000X", "Family Nurse Practitioner")

NOTE_TYPES: Mapping[str, Code] = MappingProxyType(
    {
        "progress": Code(LOINC, "11506-3", "Progress note"),
        "hp": Code(LOINC, "34117-2", "History and physical note"),
        "discharge": Code(LOINC, "18842-5", "Discharge summary"),
        "consult": Code(LOINC, "11488-4", "Consult note"),
        "ed": Code(LOINC, "34111-5", "Emergency department note"),
        "procedure": Code(LOINC, "28570-0", "Procedure note"),
    }
)
"""Clinical note types (LOINC; US Core clinical notes, https://hl7.org/fhir/us/core/clinical-notes.html)."""

RACES: tuple[tuple[Code, float], ...] = (
    (Code(CDCREC, "2106-3", "White"), 0.616),
    (Code(CDCREC, "2054-5", "Black or African American"), 0.124),
    (Code(CDCREC, "2028-9", "Asian"), 0.060),
    (Code(CDCREC, "1002-5", "American Indian or Alaska Native"), 0.011),
    (Code(CDCREC, "2076-8", "Native Hawaiian or Other Pacific Islander"), 0.002),
    (Code(CDCREC, "2131-1", "Other Race"), 0.084),
)
"""OMB race categories and US shares (2020 Census, race alone; the rest reports two or more)."""

ETHNICITIES: tuple[Code, Code] = (
    Code(CDCREC, "2135-2", "Hispanic or Latino"),
    Code(CDCREC, "2186-5", "Not Hispanic or Latino"),
)
"""OMB ethnicity categories (2020 Census: 18.7% Hispanic or Latino)."""


@dataclass(frozen=True, slots=True)
class Allergy:
    """An allergy: SNOMED CT substance, FHIR category, criticality and usual reaction."""

    substance: Code
    category: str
    criticality: str
    reaction: Code


ALLERGIES: Mapping[str, Allergy] = MappingProxyType(
    {
        "penicillin": Allergy(_snomed("764146007", "Penicillin"), "medication", "high", _snomed("247472004", "Wheal")),
        "sulfonamide": Allergy(_snomed("387406002", "Sulfonamide"), "medication", "low", _snomed("271807003", "Eruption of skin")),
        "peanut": Allergy(_snomed("762952008", "Peanut"), "food", "high", _snomed("39579001", "Anaphylaxis")),
        "shellfish": Allergy(_snomed("735029006", "Shellfish"), "food", "high", _snomed("247472004", "Wheal")),
        "latex": Allergy(_snomed("111088007", "Latex"), "environment", "low", _snomed("271807003", "Eruption of skin")),
        "pollen": Allergy(_snomed("256277009", "Grass pollen"), "environment", "low", _snomed("76067001", "Sneezing")),
        "dust_mite": Allergy(_snomed("260147004", "House dust mite"), "environment", "low", _snomed("76067001", "Sneezing")),
        "cat_dander": Allergy(_snomed("264287008", "Animal dander"), "environment", "low", _snomed("267036007", "Dyspnea")),
    }
)  # fmt: skip
"""Allergies by key (SNOMED CT substances and reactions)."""
