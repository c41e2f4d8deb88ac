"""Ingredient resolution: RxNorm relationships (concept store) and the coding fallback."""

from __future__ import annotations

from cmio.cds.ingredients import RXNORM, CodingIngredients, ConceptStoreIngredients

# A few RxNorm facts (RXCUIs): lisinopril 10 MG oral tablet (SCD 314076) consists of
# the component 314077 whose ingredient is lisinopril (IN 29046); Zestril (BN 151556)
# is a tradename of lisinopril.
CONCEPTS = {
    "314076": ("lisinopril 10 MG Oral Tablet", [("TTY", "SCD"), ("consists_of", "314077")]),
    "314077": ("lisinopril 10 MG", [("TTY", "SCDC"), ("has_ingredient", "29046")]),
    "29046": ("lisinopril", [("TTY", "IN")]),
    "151556": ("Zestril", [("TTY", "BN"), ("tradename_of", "29046")]),
}


class FakeStore(ConceptStoreIngredients):
    def __init__(self) -> None:
        super().__init__(resources=None)

    def _lookup(self, code: str) -> tuple[str, list[tuple[str, str]]] | None:
        return CONCEPTS.get(code)


def test_concept_store_ingredients() -> None:
    store = FakeStore()
    lisinopril = {("29046", "lisinopril")}
    for code in ("314076", "29046", "151556"):
        assert store.ingredients({"system": RXNORM, "code": code}) == lisinopril
    unknown = {"system": RXNORM, "code": "999", "display": "x"}
    assert store.ingredients(unknown) == {("999", "x")}  # not in the store: the coding itself
    assert store.ingredients({"system": "http://snomed.info/sct", "code": "1"}) == set()


def test_coding_fallback() -> None:
    plain = CodingIngredients()
    assert plain.ingredients({"system": RXNORM, "code": "29046"}) == {("29046", "29046")}
    assert plain.ingredients({"system": "urn:local", "code": "x"}) == set()
