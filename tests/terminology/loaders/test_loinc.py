"""LOINC loader on fixture files in the release format (real codes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cmio.terminology.concepts import ConceptStore
from cmio.terminology.loaders.loinc import LOINC_URL, load_loinc

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "loinc"


@pytest.fixture
def store(tmp_path: Path) -> ConceptStore:
    return ConceptStore(tmp_path / "t.db")


def test_terms_parts_and_hierarchy(store: ConceptStore) -> None:
    result, info = load_loinc(store, FIXTURES)
    assert result.version == "2.78" and not result.skipped
    assert info.count == result.count == 6 + 12  # terms + parts (hierarchy nodes are parts)
    a1c = store.lookup(LOINC_URL, "4548-4")
    assert a1c is not None and a1c.display == "Hemoglobin A1c/Hemoglobin.total in Blood"
    props = a1c.properties
    assert ("COMPONENT", "Hemoglobin A1c/Hemoglobin.total") in props
    assert ("COMPONENT", "LP16413-2") in props
    assert ("SCALE_TYP", "Qn") in props and ("CLASS", "CHEM") in props
    assert any(d.use_code == "SHORTNAME" and d.value == "Hgb A1c MFr Bld" for d in a1c.designations)
    assert a1c.parents == ("LP16413-2",)
    glucose = store.lookup(LOINC_URL, "2345-7")
    assert glucose is not None and glucose.display == "Glucose [Mass/volume] in Serum or Plasma"
    assert set(store.descendants(LOINC_URL, "LP14635-4")) == {"2339-0", "2345-7"}
    # LP16413-2 sits under both Chemistry and Hematology
    assert store.subsumes(LOINC_URL, "LP31392-1", "17856-6")
    assert store.subsumes(LOINC_URL, "LP29693-6", "718-7")
    assert sorted(store.with_property(LOINC_URL, "COMPONENT", "LP14635-4")) == ["2339-0", "2345-7"]
    assert sorted(store.with_property(LOINC_URL, "METHOD_TYP", "HPLC")) == ["17856-6"]
    deprecated = store.lookup(LOINC_URL, "1554-5")
    assert deprecated is not None and not deprecated.active
    part = store.lookup(LOINC_URL, "LP6827-2")
    assert part is not None and part.display == "Mass concentration"
    assert ("PartTypeName", "PROPERTY") in part.properties


def test_rerun_skips_and_table_alone_loads(store: ConceptStore, tmp_path: Path) -> None:
    load_loinc(store, FIXTURES)
    again, _ = load_loinc(store, FIXTURES)
    assert again.skipped
    table_only = tmp_path / "table"
    shutil.copytree(FIXTURES / "LoincTable", table_only / "LoincTable")
    result, _ = load_loinc(store, table_only, version="2.78-table")
    assert result.count == 6
    assert store.lookup(LOINC_URL, "4548-4", "2.78-table") is not None
    assert store.lookup(LOINC_URL, "LP6827-2", "2.78-table") is None


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Loinc\.csv"):
        load_loinc(ConceptStore(tmp_path / "x.db"), tmp_path)
    bad = tmp_path / "bad" / "LoincTable"
    bad.mkdir(parents=True)
    (bad / "Loinc.csv").write_text('"CODE","NAME"\n"1","x"\n')
    with pytest.raises(ValueError, match="missing columns"):
        load_loinc(ConceptStore(tmp_path / "y.db"), tmp_path / "bad", version="1")
