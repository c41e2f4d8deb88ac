"""RxNorm RRF loader on fixture files in the release format (real RXCUIs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders.rxnorm import RXNORM_URL, load_rxnorm

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rxnorm"


@pytest.fixture
def store(tmp_path: Path) -> ConceptStore:
    return ConceptStore(tmp_path / "t.db")


def test_concepts_names_and_relationships(store: ConceptStore) -> None:
    result, info = load_rxnorm(store, FIXTURES)
    assert result.version == "11032025" and info.count == result.count == 8
    er = store.lookup(RXNORM_URL, "860975")
    assert er is not None
    assert er.display == "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"
    assert ("TTY", "SCD") in er.properties and ("consists_of", "316255") in er.properties
    assert {d.use_code for d in er.designations} == {"SY", "PSN"}
    metformin = store.lookup(RXNORM_URL, "6809")
    assert metformin is not None and metformin.display == "metformin"  # not the MTHSPL atom
    assert ("has_tradename", "151827") in metformin.properties
    assert ("ingredient_of", "316255") in metformin.properties
    assert ("has_ingredient", "6809") not in metformin.properties  # MTHSPL row ignored
    assert list(store.with_property(RXNORM_URL, "TTY", "IN")) == ["1191", "6809"]
    assert list(store.with_property(RXNORM_URL, "tradename_of", "6809")) == ["151827"]
    assert list(store.with_property(RXNORM_URL, "has_dose_form", "317541")) == ["243670"]
    assert store.system(RXNORM_URL) is not None
    assert load_rxnorm(store, FIXTURES)[0].skipped


def test_malformed_rrf_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "RxNorm_full_01012025"
    folder.mkdir()
    (folder / "RXNCONSO.RRF").write_text("6809|ENG|metformin\n")
    (folder / "RXNREL.RRF").write_text("")
    with pytest.raises(ValueError, match=r"RXNCONSO\.RRF:1"):
        load_rxnorm(ConceptStore(tmp_path / "x.db"), folder)
