"""Code search over a concept store (the ICD-10-CM, LOINC, SNOMED CT and RxNorm path):
the answers are the terminology service's own ``$expand`` filter and ``$lookup``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmio.terminology.concepts import Concept, ConceptStore, SystemInfo
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from cmio.terminology.ucum import Ucum
from cmio.web.pages.workbench_terminology_search import (
    code_systems,
    search_codes,
    text_matches,
    value_sets,
)

LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CONCEPTS = {
    LOINC: [
        Concept("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
        Concept("17856-6", "Hemoglobin A1c/Hemoglobin.total in Blood by HPLC"),
        Concept("2345-7", "Glucose [Mass/volume] in Serum or Plasma"),
        Concept("8480-6", "Systolic blood pressure"),
        Concept("8462-4", "Diastolic blood pressure"),
    ],
    ICD: [
        Concept("E11", "Type 2 diabetes mellitus"),
        Concept("E11.9", "Type 2 diabetes mellitus without complications", parents=("E11",)),
        Concept("I10", "Essential (primary) hypertension"),
    ],
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TerminologyService]:
    store = ConceptStore(tmp_path / "concepts.db")
    for url, concepts in CONCEPTS.items():
        store.load(SystemInfo(url, "2026", title=url.rsplit("/", 1)[-1].upper()), concepts)
    terminology = TerminologyService(TerminologyResources(None, None, concepts=store))
    yield terminology
    terminology.close()


def _expected(service: TerminologyService, system: str, text: str) -> list[str]:
    answer = service.expand(ExpandRequest(url=f"{system}?fhir_vs", filter=text))
    return [m["code"] for m in answer["expansion"].get("contains", [])]


def test_concept_store_search_is_the_services_filter(service: TerminologyService) -> None:
    catalog = code_systems(service)
    assert sorted((s.url, s.count, s.source) for s in catalog.systems) == [
        (ICD, 3, "concept store"),
        (LOINC, 5, "concept store"),
    ]
    for text in ("blood", "hemoglobin a1c", "pressure diastolic", "type 2", "e11", "plasma"):
        for system in (LOINC, ICD):
            found = search_codes(service, catalog, text, system)
            assert [h.code for h in found.hits] == _expected(service, system, text), text
    everywhere = search_codes(service, catalog, "blood")
    assert [h.system for h in everywhere.hits] == [LOINC] * 4
    exact = search_codes(service, catalog, "E11.9")
    assert (exact.hits[0].system, exact.hits[0].code, exact.hits[0].match) == (ICD, "E11.9", "code")


def test_paging_and_units(service: TerminologyService) -> None:
    catalog = code_systems(service)
    first = search_codes(service, catalog, "blood", limit=3)
    second = search_codes(service, catalog, "blood", offset=3, limit=3)
    assert first.more and not second.more
    assert [h.code for h in first.hits + second.hits] == _expected(service, LOINC, "blood")
    unit = search_codes(service, catalog, "mmol/L", ucum=Ucum())
    assert [(h.system, h.code) for h in unit.hits] == [("http://unitsofmeasure.org", "mmol/L")]
    assert search_codes(service, catalog, "   ").hits == []
    assert value_sets(service) == []  # no store, no core: nothing to pick


def test_text_rule() -> None:
    assert text_matches(["hemo", "a1c"], "4548-4", "Hemoglobin A1c/Hemoglobin.total")
    assert not text_matches(["globin"], "4548-4", "Hemoglobin A1c")  # word starts only
    assert text_matches(["45"], "4548-4", None)
