"""Loaded content as the terminology service sees it: implicit value sets over the fixtures."""

from __future__ import annotations

from pathlib import Path

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.factory import open_terminology
from cmio.terminology.loaders.loinc import load_loinc
from cmio.terminology.loaders.snomed import load_snomed
from cmio.terminology.service import ExpandRequest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_implicit_valuesets_expand_from_the_concept_store(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with ConceptStore(db) as store:
        load_snomed(store, FIXTURES / "snomed")
        load_loinc(store, FIXTURES / "loinc")
    service = open_terminology(None, db, core=False)
    try:
        isa = service.expand(ExpandRequest(url="http://snomed.info/sct?fhir_vs=isa/73211009"))
        codes = {c["code"] for c in isa["expansion"]["contains"]}
        assert codes == {"73211009", "44054006", "46635009"}
        everything = service.expand(ExpandRequest(url="http://loinc.org/vs", count=100))
        loinc = {c["code"] for c in everything["expansion"]["contains"]}
        assert {"4548-4", "2345-7"} <= loinc
    finally:
        service.close()
