"""Operations on a code system held by the concept store (large systems)."""

from __future__ import annotations

from pathlib import Path

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.expansion import ExpandOptions
from cmio.terminology.lookup import lookup, subsumes
from cmio.terminology.resource_content import codesystem_to_concepts
from cmio.terminology.resources import TerminologyResources
from cmio.terminology.service import ExpandRequest, TerminologyService
from tests.terminology.test_service import CS, codesystem


def test_store_backed_system(tmp_path: Path) -> None:
    store = ConceptStore(tmp_path / "terminology.db")
    try:
        info, concepts = codesystem_to_concepts(codesystem())
        store.load(info, concepts)
        resources = TerminologyResources(concepts=store)
        service = TerminologyService(resources, max_expansion=100)
        url = f"{CS}?fhir_vs=isa/limb"
        paged = service.expand(ExpandRequest(url=url, count=2, offset=1))
        assert paged["expansion"]["total"] == 5
        assert len(paged["expansion"]["contains"]) == 2
        full = service.expand(ExpandRequest(url=url))
        codes = [c["code"] for c in full["expansion"]["contains"]]
        assert sorted(codes) == ["arm", "foot", "hand", "leg", "limb"]
        assert {c["code"]: c.get("display") for c in full["expansion"]["contains"]}["arm"] == "Arm"
        all_codes = f"{CS}?fhir_vs"
        active = service.expand(
            ExpandRequest(url=all_codes, options=ExpandOptions(active_only=True))
        )
        assert active["expansion"]["total"] == 6  # "tail" is retired
        shown = {p["name"]: p for p in lookup(resources, CS, "hand")["parameter"]}
        assert shown["display"]["valueString"] == "Hand"
        outcome = subsumes(resources, CS, "limb", "hand")["parameter"][0]["valueCode"]
        assert outcome == "subsumes"
    finally:
        store.close()
